"""Per-step seeding: the model's random draws depend on (seed, step, rank) only."""

from __future__ import annotations

import torch

from gr00t_exp.train.module import rng_states, seed_all, set_rng_states, step_seed


def test_step_seed_depends_on_each_part():
    seeds = {
        step_seed(1, 2, 0),
        step_seed(1, 3, 0),
        step_seed(2, 2, 0),
        step_seed(1, 2, 1),
        step_seed(1, 2, 0, 1),
    }
    assert len(seeds) == 5 and step_seed(1, 2, 0) == step_seed(1, 2, 0)


def test_reseeding_makes_draws_independent_of_history():
    seed_all(step_seed(0, 5))
    a = torch.randn(3)
    torch.randn(100)  # anything in between (a validation, a resume) ...
    seed_all(step_seed(0, 5))
    assert torch.equal(torch.randn(3), a)


def test_rng_state_roundtrip():
    s = rng_states()
    a = torch.rand(2)
    set_rng_states(s)
    assert torch.equal(torch.rand(2), a)
