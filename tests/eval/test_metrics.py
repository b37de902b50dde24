"""Open-loop metrics and plots."""

from __future__ import annotations

import numpy as np
import pytest

from gr00t_exp.eval.metrics import aggregate, chunk_boundary_jumps, episode_metrics, format_table
from gr00t_exp.eval.plots import plot_episode


def test_metrics_per_group_baseline_and_boundaries():
    t = np.arange(32, dtype=np.float64)
    gt = np.stack([t, -t, np.zeros_like(t)], axis=1)
    pred = gt.copy()
    pred[16:, 0] += 2.0  # the second chunk of dim 0 is offset: a jump at the boundary t=16
    groups = {"arm": slice(0, 2), "hand": slice(2, 3)}
    m = episode_metrics(pred, gt, groups, [0, 16], baseline=gt.mean(0))
    assert m["groups"]["arm"]["model"]["mse"] == pytest.approx(16 * 4 / (32 * 2))
    assert m["groups"]["hand"]["model"]["mse"] == 0.0
    assert m["overall"]["mse"] == pytest.approx(16 * 4 / (32 * 3))
    assert m["baseline"]["mse"] > m["overall"]["mse"]
    assert m["chunk_boundary"]["pred_jump"] > m["chunk_boundary"]["gt_jump"]
    s = aggregate({0: m, 1: m})
    assert s["overall"]["mse"] == pytest.approx(m["overall"]["mse"]) and s["steps"] == 64
    assert "overall" in format_table(s)


def test_boundary_jump_ignores_first_chunk():
    assert np.isnan(chunk_boundary_jumps(np.zeros((5, 1)), [0]))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        episode_metrics(np.zeros((3, 2)), np.zeros((4, 2)), {}, [0], np.zeros(2))


def test_plot_writes_png(tmp_path):
    gt = np.random.default_rng(0).normal(size=(20, 5))
    p = plot_episode(
        gt, gt + 0.1, [f"d{i}" for i in range(5)], [0, 16], tmp_path / "ep.png", "ep 0", gt.mean(0)
    )
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
