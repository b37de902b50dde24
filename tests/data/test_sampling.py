"""Sampling indices and episode-boundary padding (video clamps, absolute repeat, relative zeros)."""

from __future__ import annotations

import numpy as np
import pytest

from gr00t_exp.data.sampling import clamp_indices, episode_offsets, gather_padded, locate, step_indices


def test_padding_at_boundaries():
    rows = np.arange(5, dtype=float)[:, None] * 10 + 1  # 1, 11, 21, 31, 41
    idx = step_indices(3, range(4))  # 3, 4, 5, 6
    np.testing.assert_array_equal(gather_padded(rows, idx, absolute=True)[:, 0], [31, 41, 41, 41])
    np.testing.assert_array_equal(gather_padded(rows, idx, absolute=False)[:, 0], [31, 41, 0, 0])
    before = step_indices(0, [-2, -1, 0])
    np.testing.assert_array_equal(gather_padded(rows, before, absolute=True)[:, 0], [1, 1, 1])
    np.testing.assert_array_equal(gather_padded(rows, before, absolute=False)[:, 0], [0, 0, 1])
    np.testing.assert_array_equal(clamp_indices(np.array([-1, 2, 9]), 5), [0, 2, 4])
    assert gather_padded(rows, idx, absolute=False) is not rows


def test_every_step_is_a_sample():
    off = episode_offsets([3, 2])
    assert [locate(i, off) for i in range(5)] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    with pytest.raises(IndexError):
        locate(5, off)
