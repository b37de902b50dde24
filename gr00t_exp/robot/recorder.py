"""`deploy.record=true`: save a run as a GR00T-flavoured LeRobot v2.1 dataset for the next fine-tune.

Columns: `observation.state` (the measured state, embodiment state keys concatenated in order),
`action` (the *executed* command after the safety filter, action keys in order), timestamp,
frame/episode/global index, task_index; one H.264 mp4 per camera
(`observation.images.<cam>`, RGB); meta/info.json, episodes.jsonl, tasks.jsonl,
episodes_stats.jsonl, modality.json and stats.json. Each run appends one episode to `root`.
Readable by gr00t_exp.data.meta.load_meta.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

from gr00t_exp.data.mp4 import even_frames
from gr00t_exp.data.writer import LeRobotWriter, build_features, write_stats
from gr00t_exp.embodiment import bare

log = logging.getLogger(__name__)


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
            "annotation": {bare(self.language_key, "annotation"): {"original_key": "task_index"}},
        }

    def _names(self, dims: dict[str, int]) -> list[str]:
        out = []
        for k, d in dims.items():
            names = self.joint_names.get(k)
            out += list(names) if names and len(names) == d else [f"{k}_{i}" for i in range(d)]
        return out

    def save(self) -> Optional[Path]:
        """Append this run as the next episode; returns the dataset root (None if nothing recorded)."""
        if not self.rows:
            log.warning("recording: no frames captured, nothing written")
            return None
        fps_int = int(round(self.fps))
        states = np.stack([r[1] for r in self.rows])
        actions = np.stack([r[2] for r in self.rows])
        videos = {f"observation.images.{k}": even_frames(np.stack(self.frames[k])) for k in self.video_keys}
        features = build_features(
            videos={k: v.shape[1:3] for k, v in videos.items()},
            vectors={
                "observation.state": self._names(self.state_dims),
                "action": self._names(self.action_dims),
            },
            fps=fps_int,
        )
        try:
            writer = LeRobotWriter(
                self.root, fps=fps_int, robot_type=self.robot_type, features=features, modality=self._layout()
            )
        except ValueError as e:
            raise ValueError(f"recording: {e} (deploy.robot.recording.root)") from None
        ep, start_index, n = writer.next_episode, writer.total_frames, len(self.rows)
        table = pa.table(
            {
                "observation.state": pa.array(list(states), type=pa.list_(pa.float32())),
                "action": pa.array(list(actions), type=pa.list_(pa.float32())),
                # Frame i at i / fps: rows were taken on that schedule (timestamps of the loop).
                "timestamp": pa.array((np.arange(n) / fps_int).astype(np.float32)),
                "frame_index": pa.array(np.arange(n, dtype=np.int64)),
                "episode_index": pa.array(np.full(n, ep, dtype=np.int64)),
                "index": pa.array(np.arange(start_index, start_index + n, dtype=np.int64)),
                "task_index": pa.array(np.full(n, writer.task_index(self.task), dtype=np.int64)),
            }
        )
        writer.add_episode(table, [self.task], videos=videos)
        writer.finish(compute_dataset_stats=False)
        try:
            write_stats(self.root)
        except Exception as e:  # stats are derivable later with mode=stats; the rest is written
            log.warning("recording: stats.json not written (%s); run mode=stats on %s", e, self.root)
        log.info("recorded episode %d (%d frames) into %s", ep, n, self.root)
        return self.root
