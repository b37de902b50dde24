"""The training order is a function of (seed, position): resuming continues it exactly."""

from __future__ import annotations

import itertools

import numpy as np

from gr00t_exp.train.sampler import ResumableSampler


def take(s, n):
    return list(itertools.islice(iter(s), n))


def test_resume_continues_the_same_stream():
    full = take(ResumableSampler(37, seed=3), 100)
    s = ResumableSampler(37, seed=3)
    s.set_start(40)
    assert take(s, 60) == full[40:]


def test_each_epoch_is_a_permutation_and_epochs_differ():
    seq = take(ResumableSampler(20, seed=1), 40)
    assert sorted(seq[:20]) == list(range(20)) and sorted(seq[20:]) == list(range(20))
    assert seq[:20] != seq[20:]
    assert take(ResumableSampler(20, seed=2), 20) != seq[:20]


def test_ranks_partition_the_global_stream():
    r0 = take(ResumableSampler(10, seed=0, rank=0, world_size=2), 5)
    r1 = take(ResumableSampler(10, seed=0, rank=1, world_size=2), 5)
    assert sorted(r0 + r1) == list(range(10))


def test_weights_bias_the_draw():
    s = ResumableSampler(4, seed=0, weights=[0, 0, 1, 3])
    counts = np.bincount(take(s, 4000), minlength=4)
    assert counts[0] == counts[1] == 0 and 2.5 < counts[3] / counts[2] < 3.5
