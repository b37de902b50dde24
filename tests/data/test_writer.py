"""The one LeRobot writer: features schema, episodes appended, meta files, atomic folders, v3 tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.v3_index import read_v3_tasks
from gr00t_exp.data.writer import (
    INDEX_COLUMNS,
    LeRobotWriter,
    build_features,
    default_names,
    episode_stats,
    staged_dir,
    write_v3_tasks,
)
from tests.fixtures import shared_path

FPS = 10


def _table(ep: int, n: int, start: int, task_index: int) -> pa.Table:
    rng = np.random.default_rng(ep)
    return pa.table(
        {
            "observation.state": pa.array(
                list(rng.normal(size=(n, 3)).astype(np.float32)), pa.list_(pa.float32())
            ),
            "action": pa.array(list(rng.normal(size=(n, 3)).astype(np.float32)), pa.list_(pa.float32())),
            "timestamp": pa.array((np.arange(n) / FPS).astype(np.float32)),
            "frame_index": pa.array(np.arange(n, dtype=np.int64)),
            "episode_index": pa.array(np.full(n, ep, dtype=np.int64)),
            "index": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "task_index": pa.array(np.full(n, task_index, dtype=np.int64)),
        }
    )


def _features() -> dict:
    return build_features(
        videos={"observation.images.front": (16, 24)},
        vectors={c: default_names(c, 3) for c in ("observation.state", "action")},
        fps=FPS,
    )


MODALITY = {
    "state": {"arm": {"start": 0, "end": 3}},
    "action": {"arm": {"start": 0, "end": 3}},
    "video": {"front": {"original_key": "observation.images.front"}},
    "annotation": {"human.task_description": {"original_key": "task_index"}},
}


def _append(root: Path, task: str, n: int) -> int:
    w = LeRobotWriter(root, fps=FPS, robot_type="probe", features=_features(), modality=MODALITY)
    ep = w.next_episode
    frames = np.full((n, 16, 24, 3), 40 * ep, np.uint8)
    w.add_episode(
        _table(ep, n, w.total_frames, w.task_index(task)), [task], {"observation.images.front": frames}
    )
    w.finish()
    return ep


def test_features_schema_order_and_names():
    f = build_features(
        {"observation.images.a": (4, 6)}, {"action": default_names("action", 2)}, 15, {"next.done": "bool"}
    )
    assert list(f) == ["observation.images.a", "action", *INDEX_COLUMNS, "next.done"]
    assert f["action"] == {"dtype": "float32", "shape": [2], "names": ["action_0", "action_1"]}
    assert f["observation.images.a"]["shape"] == [4, 6, 3]
    assert f["observation.images.a"]["info"]["video.codec"] == "h264"
    assert f["next.done"] == {"dtype": "bool", "shape": [1], "names": None}


def test_episodes_appended_and_readable(tmp_path: Path):
    root = tmp_path / "ds"
    assert _append(root, "pick", 12) == 0
    assert _append(root, "place", 8) == 1
    assert _append(root, "pick", 5) == 2
    meta = load_meta(root)
    assert [(e.index, e.length, e.tasks) for e in meta.episodes] == [
        (0, 12, ["pick"]),
        (1, 8, ["place"]),
        (2, 5, ["pick"]),
    ]
    assert meta.tasks == {0: "pick", 1: "place"}
    assert (
        meta.info["total_frames"] == 25 and meta.info["total_videos"] == 3 and meta.info["total_chunks"] == 1
    )
    assert meta.read_episode(2)["index"].tolist() == list(range(20, 25))
    assert set(meta.episodes_stats) == {0, 1, 2} and meta.episodes_stats[1]["action"]["count"] == [8]
    assert meta.video_path(1, "observation.images.front").exists()
    assert json.loads((root / "meta/modality.json").read_text()) == MODALITY
    assert set(json.loads((root / "meta/stats.json").read_text())) >= {"observation.state", "action"}
    assert not [p for p in (root / "meta").iterdir() if p.name.startswith(".")]  # no temp files left


def test_append_with_other_features_is_refused_before_writing(tmp_path: Path):
    root = tmp_path / "ds"
    _append(root, "pick", 4)
    other = build_features({}, {"action": default_names("action", 3)}, FPS)
    with pytest.raises(ValueError, match=r"meta/info.json: the existing dataset has other features"):
        LeRobotWriter(root, fps=FPS, robot_type="probe", features=other)
    assert len(load_meta(root).episodes) == 1


def test_episode_stats_per_dimension():
    t = pa.table({"x": pa.array([[0.0, 2.0], [2.0, 4.0]], pa.list_(pa.float32())), "s": ["a", "b"]})
    stats = episode_stats(t)
    assert set(stats) == {"x"}  # strings have no statistics
    assert stats["x"] == {
        "min": [0.0, 2.0],
        "max": [2.0, 4.0],
        "mean": [1.0, 3.0],
        "std": [1.0, 1.0],
        "count": [2],
    }


def test_staged_dir_is_atomic(tmp_path: Path):
    dest = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_dir(dest) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    with staged_dir(dest) as tmp:
        (tmp / "done").write_text("x")
        assert not dest.exists()  # invisible until complete
    assert [p.name for p in dest.iterdir()] == ["done"]
    with pytest.raises(FileExistsError, match="not empty"):
        with staged_dir(dest):
            pass
    with staged_dir(dest, replace=True) as tmp:
        (tmp / "new").write_text("y")
    assert [p.name for p in dest.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_v3_tasks_parquet_has_lerobots_layout(tmp_path: Path):
    ref_path = shared_path("datasets", "lerobot_v30_h264", "meta", "tasks.parquet")
    tasks = {0: "pick up the red cube", 1: "push the blue block left"}
    write_v3_tasks(tmp_path / "tasks.parquet", tasks)
    ours, ref = pq.read_table(tmp_path / "tasks.parquet"), pq.read_table(ref_path)
    assert ours.equals(ref)  # same columns, types and values
    ours_pd, ref_pd = (json.loads(t.schema.metadata[b"pandas"]) for t in (ours, ref))
    assert ours_pd["index_columns"] == ref_pd["index_columns"] == ["__index_level_0__"]
    assert ours_pd["columns"] == ref_pd["columns"]
    (tmp_path / "meta").mkdir()
    write_v3_tasks(tmp_path / "meta" / "tasks.parquet", tasks)
    assert read_v3_tasks(tmp_path) == tasks
