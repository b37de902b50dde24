"""`deploy.record=true`: save a run as a GR00T-flavoured LeRobot v2.1 dataset for the next fine-tune.

Columns: `observation.state` (the measured state, embodiment state keys concatenated in order),
`action` (the *executed* command after the safety filter, action keys in order), timestamp,
frame/episode/global index, task_index; one H.264 mp4 per camera
(`observation.images.<cam>`, RGB); meta/info.json, episodes.jsonl, tasks.jsonl,
episodes_stats.jsonl, modality.json and stats.json. Each run appends one episode to `root`.
Readable by gr00t_exp.data.meta.load_meta.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


class Recorder:
    def __init__(
        self,
        root: str | Path,
        fps: float,
        state_dims: dict[str, int],
        action_dims: dict[str, int],
        video_keys: list[str],
        task: str,
        language_key: str = "annotation.human.action.task_description",
        robot_type: str = "unitree_g1_inspire",
        joint_names: Optional[dict[str, list[str]]] = None,
    ):
        self.root = Path(root)
        self.fps = float(fps)
        self.state_dims, self.action_dims = dict(state_dims), dict(action_dims)
        self.video_keys = list(video_keys)
        self.task = task
        self.language_key = language_key
        self.robot_type = robot_type
        self.joint_names = joint_names or {}
        self.rows: list[tuple[float, np.ndarray, np.ndarray]] = []
        self.frames: dict[str, list[np.ndarray]] = {k: [] for k in self.video_keys}

    def add(
        self, t: float, state: dict[str, np.ndarray], action: dict[str, np.ndarray], images: dict
    ) -> None:
        if any(k not in images for k in self.video_keys):
            return  # a frame without every camera would desynchronise the videos
        s = np.concatenate([np.asarray(state[k], np.float32) for k in self.state_dims])
        a = np.concatenate([np.asarray(action[k], np.float32) for k in self.action_dims])
        self.rows.append((t, s, a))
        for k in self.video_keys:
            self.frames[k].append(images[k])

    def __len__(self) -> int:
        return len(self.rows)

    # -- writing ---------------------------------------------------------------------------
    def _layout(self) -> dict:
        def slices(dims: dict[str, int]) -> dict:
            out, start = {}, 0
            for k, d in dims.items():
                out[k] = {"start": start, "end": start + d}
                start += d
            return out

        return {
            "state": slices(self.state_dims),
            "action": slices(self.action_dims),
            "video": {k: {"original_key": f"observation.images.{k}"} for k in self.video_keys},
            "annotation": {self.language_key.removeprefix("annotation."): {"original_key": "task_index"}},
        }

    def _names(self, dims: dict[str, int]) -> list[str]:
        out = []
        for k, d in dims.items():
            names = self.joint_names.get(k)
            out += list(names) if names and len(names) == d else [f"{k}_{i}" for i in range(d)]
        return out

    def save(self) -> Optional[Path]:
        """Append this run as the next episode; returns the dataset root (None if nothing recorded)."""
        from gr00t_exp.data.synthetic import _episode_stats, encode_mp4

        if not self.rows:
            log.warning("recording: no frames captured, nothing written")
            return None
        root = self.root
        meta = root / "meta"
        meta.mkdir(parents=True, exist_ok=True)
        info_path = meta / "info.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else None
        ep = int(info["total_episodes"]) if info else 0
        start_index = int(info["total_frames"]) if info else 0
        tasks = self._read_jsonl(meta / "tasks.jsonl")
        task_index = {r["task"]: r["task_index"] for r in tasks}
        if self.task not in task_index:
            task_index[self.task] = len(task_index)
            tasks.append({"task_index": task_index[self.task], "task": self.task})
        n = len(self.rows)
        fps_int = int(round(self.fps))
        states = np.stack([r[1] for r in self.rows])
        actions = np.stack([r[2] for r in self.rows])
        table = pa.table(
            {
                "observation.state": pa.array(list(states), type=pa.list_(pa.float32())),
                "action": pa.array(list(actions), type=pa.list_(pa.float32())),
                # Frame i at i / fps: rows were taken on that schedule (timestamps of the loop).
                "timestamp": pa.array((np.arange(n) / fps_int).astype(np.float32)),
                "frame_index": pa.array(np.arange(n, dtype=np.int64)),
                "episode_index": pa.array(np.full(n, ep, dtype=np.int64)),
                "index": pa.array(np.arange(start_index, start_index + n, dtype=np.int64)),
                "task_index": pa.array(np.full(n, task_index[self.task], dtype=np.int64)),
            }
        )
        chunk = ep // 1000
        path = root / DATA_PATH.format(episode_chunk=chunk, episode_index=ep)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        shapes = {}
        for k in self.video_keys:
            frames = np.stack(self.frames[k])
            h, w = frames.shape[1:3]
            if h % 2 or w % 2:  # yuv420p needs even sizes
                frames = frames[:, : h - h % 2, : w - w % 2]
            shapes[k] = frames.shape[1:3]
            key = f"observation.images.{k}"
            encode_mp4(
                root / VIDEO_PATH.format(episode_chunk=chunk, video_key=key, episode_index=ep),
                frames,
                fps_int,
            )
        features = {
            "observation.state": {
                "dtype": "float32",
                "shape": [states.shape[1]],
                "names": self._names(self.state_dims),
            },
            "action": {
                "dtype": "float32",
                "shape": [actions.shape[1]],
                "names": self._names(self.action_dims),
            },
        }
        for k, (h, w) in shapes.items():
            features[f"observation.images.{k}"] = {
                "dtype": "video",
                "shape": [int(h), int(w), 3],
                "names": ["height", "width", "channel"],
                "info": {
                    "video.height": int(h),
                    "video.width": int(w),
                    "video.codec": "h264",
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "video.fps": fps_int,
                    "video.channels": 3,
                    "has_audio": False,
                },
            }
        for col, dt in (
            ("timestamp", "float32"),
            ("frame_index", "int64"),
            ("episode_index", "int64"),
            ("index", "int64"),
            ("task_index", "int64"),
        ):
            features[col] = {"dtype": dt, "shape": [1], "names": None}
        if info and info.get("features") and info["features"].keys() != features.keys():
            raise ValueError(
                f"recording into {root}: the existing dataset has other features "
                f"({sorted(info['features'])}); record into a new deploy.robot.recording.root"
            )
        total_eps = ep + 1
        info = {
            "codebase_version": "v2.1",
            "robot_type": self.robot_type,
            "total_episodes": total_eps,
            "total_frames": start_index + n,
            "total_tasks": len(tasks),
            "total_videos": total_eps * len(self.video_keys),
            "total_chunks": chunk + 1,
            "chunks_size": 1000,
            "fps": fps_int,
            "splits": {"train": f"0:{total_eps}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.video_keys else None,
            "features": features,
        }
        info_path.write_text(json.dumps(info, indent=4))
        (meta / "modality.json").write_text(json.dumps(self._layout(), indent=4))
        self._append_jsonl(meta / "episodes.jsonl", {"episode_index": ep, "tasks": [self.task], "length": n})
        (meta / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tasks))
        self._append_jsonl(
            meta / "episodes_stats.jsonl", {"episode_index": ep, "stats": _episode_stats(table)}
        )
        try:
            from gr00t_exp.data.meta import load_meta
            from gr00t_exp.data.stats import atomic_write_json, compute_stats

            atomic_write_json(meta / "stats.json", compute_stats(load_meta(root)))
        except Exception as e:  # stats are derivable later with mode=stats
            log.warning("recording: stats.json not written (%s); run mode=stats on %s", e, root)
        log.info("recorded episode %d (%d frames) into %s", ep, n, root)
        return root

    @staticmethod
    def _read_jsonl(path: Path) -> list[dict]:
        if not path.exists():
            return []
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]

    @staticmethod
    def _append_jsonl(path: Path, row: dict) -> None:
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
