"""deploy.record: each run appends one episode through the shared LeRobot writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gr00t_exp.data.meta import load_meta
from gr00t_exp.robot.recorder import Recorder

DIMS = {"left_arm": 7, "left_hand": 6}


def _record(root: Path, task: str, n: int, dims: dict[str, int] = DIMS) -> Path | None:
    rec = Recorder(root, 20.0, dims, dims, ["cam_high"], task, joint_names={"left_hand": list("abcdef")})
    img = np.full((31, 41, 3), 100, np.uint8)  # odd size: cropped to even for yuv420p
    for i in range(n):
        row = {k: np.full(d, i, np.float32) for k, d in dims.items()}
        rec.add(i / 20, row, row, {"cam_high": img})
    return rec.save()


def test_runs_append_episodes(tmp_path: Path):
    root = tmp_path / "rec"
    assert _record(root, "wave", 10) == root
    _record(root, "pick", 6)
    meta = load_meta(root)
    assert [(e.index, e.length, e.tasks) for e in meta.episodes] == [(0, 10, ["wave"]), (1, 6, ["pick"])]
    assert meta.tasks == {0: "wave", 1: "pick"}
    ep1 = meta.read_episode(1)
    assert ep1["index"].tolist() == list(range(10, 16)) and ep1["task_index"].tolist() == [1] * 6
    assert ep1["observation.state"].shape == (6, 13)
    feats = meta.info["features"]
    assert feats["observation.images.cam_high"]["shape"] == [30, 40, 3]
    assert feats["action"]["names"][7:] == list("abcdef") and feats["action"]["names"][0] == "left_arm_0"
    assert set(meta.episodes_stats) == {0, 1}
    assert meta.modality.state["left_hand"].end == 13


def test_other_layout_is_refused(tmp_path: Path):
    root = tmp_path / "rec"
    _record(root, "wave", 4)
    with pytest.raises(ValueError, match="deploy.robot.recording.root"):
        _record(root, "wave", 4, {"right_arm": 7})
    assert len(load_meta(root).episodes) == 1


def test_nothing_recorded(tmp_path: Path):
    assert _record(tmp_path / "rec", "wave", 0) is None and not (tmp_path / "rec").exists()
