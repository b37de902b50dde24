"""Statistics: agree with the demo's shipped stats.json, exact quantiles, relative stats, caching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.stats import (
    STAT_KEYS,
    atomic_write_json,
    compute_all_stats,
    compute_stats,
    load_or_compute_stats,
    stats_valid,
)


def test_matches_shipped_demo_stats(pick_place: Path):
    meta = load_meta(pick_place)
    stats = compute_stats(meta)
    assert set(stats) == set(meta.stats)  # every non-string column, as upstream
    for col in ("observation.state", "action", "timestamp"):
        for k in STAT_KEYS:
            np.testing.assert_allclose(stats[col][k], meta.stats[col][k], atol=1e-4, err_msg=f"{col}.{k}")


def test_exact_values_and_relative(synthetic_dataset: Path):
    meta = load_meta(synthetic_dataset)
    stats, rel = compute_all_stats(meta)
    rows = [meta.read_episode(e.index) for e in meta.episodes]
    state = np.concatenate([r["observation.state"] for r in rows]).astype(np.float64)
    action = np.concatenate([r["action"] for r in rows]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), atol=1e-9)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(0), atol=1e-7)
    np.testing.assert_allclose(stats["action"]["q99"], np.quantile(action, 0.99, axis=0), atol=1e-12)
    np.testing.assert_allclose(stats["action"]["min"], action.min(0))
    assert stats["timestamp"]["min"] == [0.0]
    sl = meta.modality.state["right_arm"]
    np.testing.assert_allclose(
        rel["action.right_arm"]["mean"],
        (action[:, sl.start : sl.end] - state[:, sl.start : sl.end]).mean(0),
        atol=1e-9,
    )
    assert set(rel) == {f"action.{k}" for k in meta.modality.action}


def test_quantile_subsample_is_close(synthetic_dataset: Path):
    meta = load_meta(synthetic_dataset)
    exact, _ = compute_all_stats(meta)
    approx, _ = compute_all_stats(meta, max_quantile_rows=40)
    # mean/min/max stay exact; quantiles come from a 40-row subsample
    assert approx["action"]["mean"] == exact["action"]["mean"]
    assert approx["action"]["max"] == exact["action"]["max"]
    spread = np.array(exact["action"]["max"]) - np.array(exact["action"]["min"])
    assert np.all(np.abs(np.array(approx["action"]["q99"]) - exact["action"]["q99"]) <= spread * 0.5 + 1e-9)


def test_load_or_compute_uses_valid_file_and_caches(synthetic_copy: Path, tmp_path: Path):
    meta = load_meta(synthetic_copy)
    assert stats_valid(meta, meta.stats)
    assert load_or_compute_stats(meta, tmp_path / "cache") is meta.stats
    (synthetic_copy / "meta" / "stats.json").unlink()
    meta = load_meta(synthetic_copy)
    s1 = load_or_compute_stats(meta, tmp_path / "cache")
    cached = list((tmp_path / "cache" / "stats").glob("*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text()) == s1
    assert not (synthetic_copy / "meta" / "stats.json").exists()  # never written into the dataset


def test_invalid_stats_detected(synthetic_copy: Path):
    p = synthetic_copy / "meta" / "stats.json"
    s = json.loads(p.read_text())
    del s["action"]["q01"]
    p.write_text(json.dumps(s))
    meta = load_meta(synthetic_copy)
    assert not stats_valid(meta, meta.stats)
    assert "q01" in load_or_compute_stats(meta)["action"]


def test_atomic_write_leaves_no_tmp(tmp_path: Path):
    atomic_write_json(tmp_path / "x" / "s.json", {"a": 1})
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["s.json"]
