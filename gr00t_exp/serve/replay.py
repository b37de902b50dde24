"""`ReplayPolicy`: serves a recorded episode's actions through the policy interface.

For testing robots and clients without a model: `reset(options={"episode_index": N})` selects an
episode; each `get_action` returns the next `action_horizon` recorded steps per action key (the
last row repeats past the episode end) and advances by `execution_horizon` steps.
Observations are validated like for a model (keys, dtypes, shapes, image size), so a client that
works against the replay server sends what the real policy needs.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gr00t_exp.serve.base import BasePolicy
from gr00t_exp.serve.observation import Observation, ObservationSpec

log = logging.getLogger(__name__)


class _Layout:
    """What ReplayPolicy needs from a GR00T LeRobot v2 dataset (via load_meta when available)."""

    def __init__(self, root: Path):
        self.root = root
        try:
            from gr00t_exp.data.meta import load_meta

            self._meta = load_meta(root, check_files=False)
        except ImportError:  # data layer not installed: read the v2 layout directly
            self._meta = None
        if self._meta is not None:
            m = self._meta.modality
            self.info = self._meta.info
            self.state = {k: (s.start, s.end, m.column("state", k)) for k, s in m.state.items()}
            self.action = {k: (s.start, s.end, m.column("action", k)) for k, s in m.action.items()}
            self.absolute = {k: s.absolute for k, s in m.action.items()}
            self.video = {k: v.original_key for k, v in m.video.items()}
            self.annotation = list(m.annotation)
            self.episodes = {e.index: e.length for e in self._meta.episodes}
        else:
            self.info = _read_json(root / "meta" / "info.json")
            mod = _read_json(root / "meta" / "modality.json")

            def sl(group: str) -> dict:
                default = "observation.state" if group == "state" else "action"
                return {
                    k: (int(v["start"]), int(v["end"]), v.get("original_key") or default)
                    for k, v in mod.get(group, {}).items()
                }

            self.state, self.action = sl("state"), sl("action")
            self.absolute = {k: bool(v.get("absolute", True)) for k, v in mod.get("action", {}).items()}
            self.video = {k: v["original_key"] for k, v in mod.get("video", {}).items()}
            self.annotation = list(mod.get("annotation", {}))
            self.episodes = {}
            with open(root / "meta" / "episodes.jsonl") as f:
                for line in f:
                    if line.strip():
                        e = json.loads(line)
                        self.episodes[int(e["episode_index"])] = int(e["length"])

    def image_size(self, view: str) -> tuple[int, int] | None:
        feat = self.info.get("features", {}).get(self.video[view], {})
        shape = feat.get("shape")
        names = feat.get("names") or ["height", "width", "channel"]
        if not shape or len(shape) != 3:
            return None
        dims = dict(zip(names, shape, strict=False))
        if "height" in dims and "width" in dims:
            return int(dims["height"]), int(dims["width"])
        return int(shape[0]), int(shape[1])

    def read_columns(self, episode_index: int, columns: list[str]) -> dict[str, np.ndarray]:
        if self._meta is not None:
            return self._meta.read_episode(episode_index, columns=columns)
        import pyarrow.parquet as pq

        chunk = episode_index // int(self.info.get("chunks_size") or 1000)
        rel = self.info.get("data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
        table = pq.read_table(
            self.root / rel.format(episode_chunk=chunk, episode_index=episode_index), columns=columns
        )
        return {c: np.asarray(table.column(c).to_pylist(), dtype=np.float64) for c in columns}


def _read_json(path: Path) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: is deploy.policy.dataset a GR00T LeRobot v2 dataset root?"
        ) from None


class ReplayPolicy(BasePolicy):
    kind = "replay"

    def __init__(
        self,
        dataset_path: str | Path,
        episode_index: int = 0,
        action_horizon: int = 16,
        execution_horizon: int | None = None,
        video_keys: list[str] | None = None,
        state_keys: list[str] | None = None,
        action_keys: list[str] | None = None,
        language_key: str | None = None,
        strict: bool = True,
        embodiment_tag: str = "new_embodiment",
    ):
        """Keys are bare (`left_arm`) or prefixed (`state.left_arm`); None = all in modality.json."""
        self.root = Path(dataset_path).expanduser()
        self.layout = _Layout(self.root)
        lay = self.layout

        def pick(given: list[str] | None, available: dict, group: str) -> list[str]:
            if not given:
                return list(available)
            keys = [k.split(".", 1)[1] if k.startswith(group + ".") else k for k in given]
            bad = [k for k in keys if k not in available]
            if bad:
                raise KeyError(
                    f"{group} keys {bad} are not in {self.root}/meta/modality.json (has {list(available)})"
                )
            return keys

        self.video_keys = pick(video_keys, lay.video, "video")
        self.state_keys = pick(state_keys, lay.state, "state")
        self.action_keys = pick(action_keys, lay.action, "action")
        if language_key is None and lay.annotation:
            language_key = "annotation." + lay.annotation[0]
        self.action_horizon = int(action_horizon)
        self.execution_horizon = int(execution_horizon or action_horizon)
        if self.execution_horizon < 1:
            raise ValueError("execution_horizon must be >= 1")
        self.embodiment_tag = embodiment_tag
        self.spec = ObservationSpec(
            video={k: lay.image_size(k) for k in self.video_keys},
            state={k: lay.state[k][1] - lay.state[k][0] for k in self.state_keys},
            action={k: lay.action[k][1] - lay.action[k][0] for k in self.action_keys},
            language_key=language_key,
            action_horizon=self.action_horizon,
            strict=strict,
        )
        self._lock = threading.Lock()
        self.reset({"episode_index": episode_index})

    def reset(self, options: dict | None = None) -> dict:
        options = options or {}
        idx = options.get("episode_index", getattr(self, "episode_index", 0))
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise ValueError(f"reset: episode_index must be an integer, got {idx!r}")
        idx = int(idx)
        if idx not in self.layout.episodes:
            raise ValueError(
                f"reset: episode_index {idx} is not in {self.root}/meta/episodes.jsonl "
                f"(episodes {min(self.layout.episodes)}..{max(self.layout.episodes)})"
            )
        columns = sorted({self.layout.action[k][2] for k in self.action_keys})
        cols = self.layout.read_columns(idx, columns)
        actions = {}
        for k in self.action_keys:
            start, end, col = self.layout.action[k]
            actions[k] = np.asarray(cols[col], dtype=np.float32)[:, start:end]
        with self._lock:
            self.episode_index = idx
            self._actions = actions
            self.length = len(next(iter(actions.values()))) if actions else 0
            self.step = 0
        return {"episode_index": idx, "length": self.length}

    def _predict(self, obs: Observation, options: dict | None) -> tuple[dict[str, np.ndarray], dict]:
        with self._lock:
            rows = np.minimum(np.arange(self.step, self.step + self.action_horizon), self.length - 1)
            acts = {
                k: np.broadcast_to(v[rows][None], (obs.batch_size, self.action_horizon, v.shape[1]))
                for k, v in self._actions.items()
            }
            self.step += self.execution_horizon
        return acts, {}

    def model_card(self) -> dict[str, Any]:
        return {
            **super().model_card(),
            "embodiment_tag": self.embodiment_tag,
            "dataset": str(self.root),
            "episode_index": self.episode_index,
            "execution_horizon": self.execution_horizon,
        }
