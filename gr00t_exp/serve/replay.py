"""`ReplayPolicy`: serves a recorded episode's actions through the policy interface.

For testing robots and clients without a model, with N1.6's replay semantics:
`reset(options={"episode_index": N, "step_index": K})` selects an episode and a start step and
returns `{episode_index, episode_length, current_step}`; each `get_action` returns the next
`action_horizon` recorded steps per action key (the last row repeats past the episode end), info
`{current_step, episode_length, episode_index}` of the chunk, and advances by `execution_horizon`.
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

from gr00t_exp.data.modality import Modality, feature_image_shape, parse_modality
from gr00t_exp.embodiment import EmbodimentLayout, prefixed
from gr00t_exp.serve.base import BasePolicy
from gr00t_exp.serve.observation import Observation, ObservationSpec

log = logging.getLogger(__name__)


class _Layout:
    """What ReplayPolicy reads from a GR00T LeRobot v2 dataset (via load_meta when available)."""

    def __init__(self, root: Path):
        self.root = root
        try:
            from gr00t_exp.data.meta import load_meta

            self._meta = load_meta(root, check_files=False)
        except ImportError:  # data layer not installed: read the v2 layout directly
            self._meta = None
        if self._meta is not None:
            self.info = self._meta.info
            self.modality: Modality = self._meta.modality
            self.episodes = {e.index: e.length for e in self._meta.episodes}
        else:
            self.info = _read_json(root / "meta" / "info.json")
            self.modality = parse_modality(
                _read_json(root / "meta" / "modality.json"), f"{root}/meta/modality.json"
            )
            self.episodes = {}
            with open(root / "meta" / "episodes.jsonl") as f:
                for line in f:
                    if line.strip():
                        e = json.loads(line)
                        self.episodes[int(e["episode_index"])] = int(e["length"])

    def image_size(self, view: str) -> tuple[int, int] | None:
        shape = feature_image_shape(self.info, self.modality.video[view].original_key)
        return (shape[0], shape[1]) if shape else None

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


def _index(options: dict, name: str, default: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"reset: {name} must be an integer, got {value!r}")
    return int(value)


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
        mod = self.layout.modality
        if language_key is None and mod.annotation:
            language_key = prefixed("annotation", next(iter(mod.annotation)))
        self.action_horizon = int(action_horizon)
        self.execution_horizon = int(execution_horizon or action_horizon)
        if self.execution_horizon < 1:
            raise ValueError("execution_horizon must be >= 1")
        self.embodiment_tag = embodiment_tag
        # The served keys as an embodiment over the dataset's modality: unknown keys fail here,
        # naming the key and modality.json; widths and slices come from the layout.
        self.embodiment_layout = EmbodimentLayout.build(
            {
                "name": self.root.name,
                "embodiment_tag": embodiment_tag,
                "video_keys": [prefixed("video", k) for k in video_keys or mod.video],
                "state_keys": [prefixed("state", k) for k in state_keys or mod.state],
                "action_keys": [prefixed("action", k) for k in action_keys or mod.action],
                **({"language_key": language_key} if language_key else {}),
                "action_indices": list(range(self.action_horizon)),
            },
            mod,
            video_sizes={k: self.layout.image_size(k) for k in mod.video},
            source=f"{self.root}/meta/modality.json",
        )
        lay = self.embodiment_layout
        self.video_keys = lay.keys("video")
        self.state_keys = lay.keys("state")
        self.action_keys = lay.keys("action")
        self.spec = ObservationSpec(
            video=lay.video_sizes(),
            state=lay.widths("state"),
            action=lay.widths("action"),
            language_key=language_key,
            action_horizon=self.action_horizon,
            strict=strict,
        )
        self._lock = threading.Lock()
        self.reset({"episode_index": episode_index})

    def reset(self, options: dict | None = None) -> dict:
        """N1.6 replay semantics: `options={"episode_index": N, "step_index": K}` (both optional;
        the episode stays, the step restarts at 0). Returns episode_index, episode_length,
        current_step (upstream's keys) and `length` (= episode_length, kept for older callers)."""
        options = options or {}
        idx = _index(options, "episode_index", getattr(self, "episode_index", 0))
        step = _index(options, "step_index", 0)
        if idx not in self.layout.episodes:
            raise ValueError(
                f"reset: episode_index {idx} is not in {self.root}/meta/episodes.jsonl "
                f"(episodes {min(self.layout.episodes)}..{max(self.layout.episodes)})"
            )
        if step < 0:
            raise ValueError(f"reset: step_index must be >= 0, got {step}")
        if idx != getattr(self, "episode_index", None):
            cols = self.layout.read_columns(idx, self.embodiment_layout.columns("action"))
            actions = {
                s.key: np.asarray(cols[s.column], dtype=np.float32)[:, s.column_slice]
                for s in self.embodiment_layout.action
            }
        else:
            actions = self._actions
        with self._lock:
            self.episode_index = idx
            self._actions = actions
            self.length = len(next(iter(actions.values()))) if actions else 0
            self.step = step
        return {
            "episode_index": idx,
            "episode_length": self.length,
            "current_step": step,
            "length": self.length,
        }

    def _predict_with_info(
        self, obs: Observation, options: dict | None
    ) -> tuple[dict[str, np.ndarray], dict, dict[str, Any]]:
        with self._lock:
            info = {
                "current_step": self.step,
                "episode_length": self.length,
                "episode_index": self.episode_index,
            }
            rows = np.minimum(np.arange(self.step, self.step + self.action_horizon), self.length - 1)
            acts = {
                k: np.broadcast_to(v[rows][None], (obs.batch_size, self.action_horizon, v.shape[1]))
                for k, v in self._actions.items()
            }
            self.step += self.execution_horizon
        return acts, {}, info

    def model_card(self) -> dict[str, Any]:
        return {
            **super().model_card(),
            "embodiment_tag": self.embodiment_tag,
            "dataset": str(self.root),
            "episode_index": self.episode_index,
            "execution_horizon": self.execution_horizon,
        }
