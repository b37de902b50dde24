"""Synthetic dataset writer: valid v2.1 with real H.264 mp4s, idempotent, learnable actions."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
from omegaconf import OmegaConf

from gr00t_exp.data.config import EmbodimentConfig
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.synthetic import TASKS, write_synthetic_dataset


def test_valid_v21_dataset(synthetic_dataset: Path, gr1_embodiment):
    meta = load_meta(synthetic_dataset, gr1_embodiment)
    assert meta.version == "v2.1" and meta.warnings == []
    assert meta.episodes_stats is not None and set(meta.episodes_stats) == set(meta.episode_indices)
    assert meta.modality.state["waist"].end == 44
    for ep in meta.episodes:
        data = meta.read_episode(ep.index)
        assert data["observation.state"].shape == (ep.length, 44)
        np.testing.assert_allclose(np.diff(data["timestamp"]), 1 / 20, atol=1e-5)
        with av.open(str(meta.video_path(ep.index, "observation.images.ego_view"))) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
            pk = [p for p in c.demux(s) if p.size]
            assert len(pk) == ep.length
            assert sum(p.is_keyframe for p in pk) < len(pk)  # inter frames: a real GOP
    stats = json.loads((synthetic_dataset / "meta" / "stats.json").read_text())
    assert len(stats["action"]["q99"]) == 44


def test_idempotent(synthetic_dataset: Path, gr1_embodiment):
    before = {p: p.stat().st_mtime_ns for p in synthetic_dataset.rglob("*")}
    again = write_synthetic_dataset(
        synthetic_dataset,
        gr1_embodiment,
        episodes=4,
        min_length=24,
        max_length=40,
        fps=20,
        height=64,
        width=64,
        seed=0,
    )
    assert again == synthetic_dataset
    assert {p: p.stat().st_mtime_ns for p in synthetic_dataset.rglob("*")} == before


def test_other_parameters_rewrite(tmp_path: Path):
    out = write_synthetic_dataset(tmp_path / "d", None, episodes=1, min_length=5, max_length=5)
    assert load_meta(out).total_frames == 5
    write_synthetic_dataset(tmp_path / "d", None, episodes=2, min_length=6, max_length=6)
    assert load_meta(out).total_frames == 12


def test_refuses_foreign_folder(tmp_path: Path):
    (tmp_path / "mine.txt").write_text("x")
    try:
        write_synthetic_dataset(tmp_path, None, episodes=1, min_length=5, max_length=5)
    except FileExistsError as e:
        assert "not a synthetic dataset" in str(e)
    else:
        raise AssertionError("expected FileExistsError")


def test_layout_derived_from_keys(tmp_path: Path):
    emb = OmegaConf.merge(
        OmegaConf.structured(EmbodimentConfig),
        {
            "name": "toy",
            "video_keys": ["video.front", "video.wrist"],
            "state_keys": ["state.arm", "state.gripper"],
            "action_keys": ["action.arm", "action.gripper"],
            "language_key": "annotation.human.task_description",
        },
    )
    out = write_synthetic_dataset(tmp_path / "toy", emb, episodes=2, min_length=8, max_length=10)
    meta = load_meta(out, emb)
    assert meta.modality.state["gripper"].start == 7 and meta.modality.state["gripper"].end == 8
    assert set(meta.modality.video) == {"front", "wrist"}
    assert "annotation.human.task_description" in meta.columns


def _blob_centre(frame: np.ndarray) -> tuple[float, float]:
    mask = (frame[..., 0] > 180) & (frame[..., 1] < 110)  # camera 0's red disc
    ys, xs = np.nonzero(mask)
    return xs.mean() / frame.shape[1], ys.mean() / frame.shape[0]


def test_actions_are_a_function_of_state_image_and_task(tmp_path: Path, gr1_embodiment):
    out = write_synthetic_dataset(
        tmp_path / "d", gr1_embodiment, episodes=18, min_length=6, max_length=8, seed=3
    )
    meta = load_meta(out)
    rows = []  # (state, blob centre, action - state) per step of the "reach" episodes
    for ep in meta.episodes:
        data = meta.read_episode(ep.index)
        if meta.tasks[int(data["task_index"][0])] != TASKS[0]:
            continue
        with av.open(str(meta.video_path(ep.index, "observation.images.ego_view"))) as c:
            frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
        cx, cy = _blob_centre(frame)
        s, a = data["observation.state"].astype(np.float64), data["action"].astype(np.float64)
        rows += [(s[t], (cx, cy), a[t] - s[t]) for t in range(len(s))]
    S = np.array([r[0] for r in rows])
    B = np.array([r[1] for r in rows])
    D = np.array([r[2] for r in rows])
    # per state dim: delta_d ~ s_d + blob centre (linear), fitted on half the steps, scored on the rest
    half = len(rows) // 2
    r2_img, r2_no = [], []
    for d in range(S.shape[1]):
        for with_image, acc in ((True, r2_img), (False, r2_no)):
            X = np.column_stack([S[:, d], np.ones(len(S))] + ([B] if with_image else []))
            coef, *_ = np.linalg.lstsq(X[:half], D[:half, d], rcond=None)
            resid = D[half:, d] - X[half:] @ coef
            acc.append(1 - resid.var() / D[half:, d].var())
    assert np.mean(r2_img) > 0.95, np.mean(r2_img)
    assert np.mean(r2_no) < np.mean(r2_img) - 0.2  # the image carries the target


def test_every_behaviour_stays_bounded(tmp_path: Path, gr1_embodiment):
    """No run-away episodes: min-max statistics are not stretched far beyond the reachable targets
    (|P b| <= 1.6 for P in [-1, 1], b in [-0.8, 0.8]), and the episodes do move."""
    out = write_synthetic_dataset(
        tmp_path / "d", gr1_embodiment, episodes=6, min_length=80, max_length=80, seed=5
    )
    meta = load_meta(out)
    for ep in meta.episodes:
        a = meta.read_episode(ep.index)["action"].astype(np.float64)
        assert np.abs(a).max() < 1.7, (
            meta.tasks[int(meta.read_episode(ep.index)["task_index"][0])],
            np.abs(a).max(),
        )
        assert np.abs(a[-1] - a[0]).max() > 0.05
