"""The one writer of GR00T-flavoured LeRobot datasets (synthetic data, robot recordings, conversion).

It knows the layout we produce: the info.json features schema, one parquet per episode, one mp4 per
episode per camera, and the meta files (info.json, episodes.jsonl, tasks.jsonl,
episodes_stats.jsonl, modality.json, stats.json; meta/tasks.parquet for v3.0). Two kinds of
atomicity:
- a whole new dataset is written into a temp folder beside its destination and renamed into place
  (`staged_dir`), so a crash or a failed conversion leaves no half-written dataset behind;
- appending to an existing dataset (`LeRobotWriter` on a folder with meta/info.json) rewrites each
  meta file through a temp file + rename, so a crash leaves the previous meta intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gr00t_exp.data.meta import (
    DEFAULT_DATA_PATH,
    DEFAULT_VIDEO_PATH,
    EPISODES_FILE,
    EPISODES_STATS_FILE,
    INFO_FILE,
    STATS_FILE,
    TASKS_FILE,
    load_meta,
    table_to_numpy,
)
from gr00t_exp.data.mp4 import encode_mp4
from gr00t_exp.data.stats import atomic_write_json, compute_stats

VERSION = "v2.1"
CHUNKS_SIZE = 1000
MODALITY_FILE = "meta/modality.json"
# The bookkeeping columns every LeRobot episode parquet has, with their info.json dtypes.
INDEX_COLUMNS: dict[str, str] = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
# LeRobot v3.0 stores the task text as the (unnamed) pandas index of meta/tasks.parquet; pandas
# names the arrow column of an unnamed index so.
_PANDAS_INDEX = "__index_level_0__"


# -- features schema ---------------------------------------------------------------------------


def video_feature(
    height: int, width: int, fps: float, codec: str = "h264", pix_fmt: str = "yuv420p"
) -> dict[str, Any]:
    return {
        "dtype": "video",
        "shape": [int(height), int(width), 3],
        "names": ["height", "width", "channel"],
        "info": {
            "video.height": int(height),
            "video.width": int(width),
            "video.codec": codec,
            "video.pix_fmt": pix_fmt,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def default_names(column: str, width: int) -> list[str]:
    """`<last part of the column>_<i>`: "observation.state" -> state_0, state_1, ..."""
    return [f"{column.split('.')[-1]}_{i}" for i in range(width)]


def vector_feature(names: list[str], dtype: str = "float32") -> dict[str, Any]:
    return {"dtype": dtype, "shape": [len(names)], "names": list(names)}


def scalar_feature(dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [1], "names": None}


def build_features(
    videos: Mapping[str, tuple[int, int]],
    vectors: Mapping[str, list[str]],
    fps: float,
    scalars: Optional[Mapping[str, str]] = None,
) -> dict[str, dict]:
    """info.json `features`, in this order: videos {key: (height, width)} (H.264 yuv420p),
    float32 vectors {column: names}, then `INDEX_COLUMNS` and `scalars` {column: dtype}."""
    features: dict[str, dict] = {k: video_feature(h, w, fps) for k, (h, w) in videos.items()}
    features.update({col: vector_feature(names) for col, names in vectors.items()})
    for col, dtype in {**INDEX_COLUMNS, **(scalars or {})}.items():
        features.setdefault(col, scalar_feature(dtype))
    return features


def video_keys(features: Mapping[str, Any]) -> list[str]:
    return [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") == "video"]


def drop_features(features: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    """features without `keys` (e.g. video features that have no files, which LeRobot would open)."""
    return {k: f for k, f in features.items() if k not in keys}


# -- per-episode statistics ----------------------------------------------------------------------


def episode_stats(table: pa.Table) -> dict[str, dict[str, list]]:
    """LeRobot v2.1 episodes_stats entry: per numeric column min/max/mean/std/count (per dimension)."""
    out = {}
    for name, arr in table_to_numpy(table).items():
        if arr.dtype.kind not in "biuf":
            continue  # strings have no statistics
        x = np.asarray(arr, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        out[name] = {
            "min": x.min(0).tolist(),
            "max": x.max(0).tolist(),
            "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(),
            "count": [len(x)],
        }
    return out


# -- files -------------------------------------------------------------------------------------


def episode_chunk(episode_index: int, chunks_size: int = CHUNKS_SIZE) -> int:
    return episode_index // chunks_size


def data_file(root: Path, episode_index: int, chunks_size: int = CHUNKS_SIZE) -> Path:
    return root / DEFAULT_DATA_PATH.format(
        episode_chunk=episode_chunk(episode_index, chunks_size), episode_index=episode_index
    )


def video_file(root: Path, key: str, episode_index: int, chunks_size: int = CHUNKS_SIZE) -> Path:
    return root / DEFAULT_VIDEO_PATH.format(
        episode_chunk=episode_chunk(episode_index, chunks_size), video_key=key, episode_index=episode_index
    )


def write_parquet(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _replace_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + os.replace: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """info.json / modality.json layout: indent 4, as LeRobot writes info.json."""
    _replace_text(path, json.dumps(data, indent=4))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    _replace_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tasks_rows(tasks: Mapping[int, str]) -> list[dict]:
    return [{"task_index": int(i), "task": t} for i, t in sorted(tasks.items())]


def write_v3_tasks(path: Path, tasks: Mapping[int, str]) -> None:
    """meta/tasks.parquet as LeRobot v3.0 writes it (a pandas frame indexed by the task text):
    columns `task_index` (int64) and `__index_level_0__` (large_string, the text), with pandas
    metadata naming the latter as the frame's unnamed index."""
    items = sorted(tasks.items())
    pandas_meta = {
        "index_columns": [_PANDAS_INDEX],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "str",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": _PANDAS_INDEX,
                "pandas_type": "object",
                "numpy_type": "str",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
    }
    schema = pa.schema(
        [("task_index", pa.int64()), (_PANDAS_INDEX, pa.large_string())],
        metadata={b"pandas": json.dumps(pandas_meta).encode()},
    )
    table = pa.table(
        {"task_index": [int(i) for i, _ in items], _PANDAS_INDEX: [t for _, t in items]}, schema=schema
    )
    write_parquet(path, table)


def v21_info(
    *,
    robot_type: str,
    fps: float,
    features: dict,
    total_episodes: int,
    total_frames: int,
    total_tasks: int,
    last_episode: int,
    chunks_size: int = CHUNKS_SIZE,
    base: Optional[Mapping[str, Any]] = None,
) -> dict:
    """A v2.1 info.json; keys of `base` (a source's info) that a v2.1 reader does not own are kept."""
    n_videos = len(video_keys(features))
    info = {
        "codebase_version": VERSION,
        "robot_type": robot_type,
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "total_videos": total_episodes * n_videos,
        "total_chunks": last_episode // chunks_size + 1 if total_episodes else 0,
        "chunks_size": chunks_size,
        "fps": fps,
        "splits": {"train": f"0:{total_episodes}"},
        "data_path": DEFAULT_DATA_PATH,
        "video_path": DEFAULT_VIDEO_PATH if n_videos else None,
        "features": features,
    }
    if base:
        extra = {k: v for k, v in base.items() if k not in info}
        info = {**info, **extra, "splits": base.get("splits", info["splits"])}
    return info


def write_stats(root: Path) -> None:
    """meta/stats.json from the dataset's parquet files (atomic)."""
    atomic_write_json(root / STATS_FILE, compute_stats(load_meta(root)))


@contextmanager
def staged_dir(dest: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside `dest`; on success it becomes `dest`, on any error it is removed.

    `dest` must not exist or be empty, unless `replace` (then the old folder is swapped out only
    after the new one is complete)."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()) and not replace:
        raise FileExistsError(f"{dest} exists and is not empty; choose a new output folder or remove it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield tmp
        if dest.exists() and replace:
            shutil.rmtree(dest)
        elif dest.exists():
            dest.rmdir()  # empty (checked above)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- the writer --------------------------------------------------------------------------------


class LeRobotWriter:
    """Writes a v2.1 dataset episode by episode into `root`; `finish()` writes the meta files.

    On a folder that already holds a dataset (meta/info.json), episodes are appended after the
    existing ones: its features must be the same."""

    def __init__(
        self,
        root: str | Path,
        *,
        fps: float,
        robot_type: str,
        features: dict[str, dict],
        modality: Optional[dict] = None,
        chunks_size: int = CHUNKS_SIZE,
        base_info: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.root = Path(root)
        self.base_info = base_info  # a converted source's info.json: its extra keys are kept
        self.fps = fps
        self.robot_type = robot_type
        self.features = features
        self.modality = modality
        self.chunks_size = chunks_size
        self.episodes: list[dict] = read_jsonl(self.root / EPISODES_FILE)
        self.episodes_stats: list[dict] = read_jsonl(self.root / EPISODES_STATS_FILE)
        self.tasks: dict[int, str] = {
            int(r["task_index"]): r["task"] for r in read_jsonl(self.root / TASKS_FILE)
        }
        self.total_frames = 0
        info_path = self.root / INFO_FILE
        if info_path.exists():
            old = json.loads(info_path.read_text())
            old_features = old.get("features") or {}
            if old_features != features:  # a width, camera size or name change would corrupt it
                differ = sorted(
                    k for k in {*old_features, *features} if old_features.get(k) != features.get(k)
                )
                raise ValueError(
                    f"{info_path}: the existing dataset has other features (differing: {differ}); "
                    "write into a new dataset folder"
                )
            self.total_frames = int(old.get("total_frames", 0))
            self.chunks_size = int(old.get("chunks_size") or chunks_size)

    @property
    def next_episode(self) -> int:
        return max((int(e["episode_index"]) for e in self.episodes), default=-1) + 1

    def task_index(self, task: str) -> int:
        """The index of `task`, registering it when new."""
        for i, t in self.tasks.items():
            if t == task:
                return i
        i = max(self.tasks, default=-1) + 1
        self.tasks[i] = task
        return i

    def add_episode(
        self,
        table: pa.Table,
        tasks: list[str],
        videos: Optional[Mapping[str, np.ndarray]] = None,
        stats: Optional[dict] = None,
    ) -> int:
        """Write the episode's parquet (its `episode_index` column decides the index) and one
        H.264 mp4 per camera {feature key: uint8 (N, H, W, 3) RGB}; returns the episode index."""
        ep = int(table.column("episode_index")[0].as_py()) if table.num_rows else self.next_episode
        write_parquet(data_file(self.root, ep, self.chunks_size), table)
        for key, frames in (videos or {}).items():
            encode_mp4(video_file(self.root, key, ep, self.chunks_size), frames, int(round(self.fps)))
        for t in tasks:
            self.task_index(t)
        self.episodes.append({"episode_index": ep, "tasks": list(tasks), "length": table.num_rows})
        self.episodes_stats.append({"episode_index": ep, "stats": stats or episode_stats(table)})
        self.total_frames += table.num_rows
        return ep

    def finish(self, *, compute_dataset_stats: bool = True) -> Path:
        """Write info.json, episodes.jsonl, tasks.jsonl, episodes_stats.jsonl, modality.json and
        (unless told not to) stats.json."""
        info = v21_info(
            robot_type=self.robot_type,
            fps=self.fps,
            features=self.features,
            total_episodes=len(self.episodes),
            total_frames=self.total_frames,
            total_tasks=len(self.tasks),
            last_episode=self.next_episode - 1,
            chunks_size=self.chunks_size,
            base=self.base_info,
        )
        write_json(self.root / INFO_FILE, info)
        if self.modality is not None:
            write_json(self.root / MODALITY_FILE, self.modality)
        write_jsonl(self.root / EPISODES_FILE, self.episodes)
        write_jsonl(self.root / TASKS_FILE, tasks_rows(self.tasks))
        write_jsonl(self.root / EPISODES_STATS_FILE, self.episodes_stats)
        if compute_dataset_stats:
            write_stats(self.root)
        return self.root
