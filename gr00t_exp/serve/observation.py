"""Observation validation and the two wire formats (docs/upstream.md "Wire formats").

N1.5 flat:   {"video.<view>": uint8 (T,H,W,3), "state.<key>": float (T,D), "annotation.<...>": [str]}
             batched when every state array is 3-D: (B,T,H,W,3) / (B,T,D) / B strings.
N1.6 nested: {"video": {view: uint8 (B,T,H,W,3)}, "state": {key: float32 (B,T,D)},
              "language": {"annotation.<...>": [[str]] * B}}

Both are parsed into one `Observation` (always batched) after checking keys, dtypes, shapes,
image size and finiteness against an `ObservationSpec`; each error names the key and the fix.
Actions go back in the caller's format: flat `action.<key>` (16,D) / (B,16,D), or nested `<key>`
(B,16,D).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FLAT = "flat"
NESTED = "nested"
NESTED_GROUPS = ("video", "state", "language")


class ObservationError(ValueError):
    """An observation that does not match the served policy's modality layout."""


@dataclass
class ObservationSpec:
    """What the served policy expects. Keys are bare names (`ego_view`, `left_arm`)."""

    video: dict[str, tuple[int, int] | None] = field(default_factory=dict)  # view -> (H, W)
    state: dict[str, int] = field(default_factory=dict)  # key -> D
    action: dict[str, int] = field(default_factory=dict)  # key -> D
    language_key: str | None = "annotation.human.action.task_description"
    video_horizon: int = 1
    state_horizon: int = 1
    action_horizon: int = 16
    strict: bool = True
    # action key -> state key for actions predicted relative to the last observed state
    relative_actions: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "video": {k: (list(v) if v else None) for k, v in self.video.items()},
            "state": dict(self.state),
            "action": dict(self.action),
            "language_key": self.language_key,
            "video_horizon": self.video_horizon,
            "state_horizon": self.state_horizon,
            "action_horizon": self.action_horizon,
            "relative_actions": dict(self.relative_actions),
        }


@dataclass
class Observation:
    """A validated, always-batched observation."""

    video: dict[str, np.ndarray]  # view -> uint8 (B, T, H, W, 3)
    state: dict[str, np.ndarray]  # key -> float32 (B, T, D)
    language: list[str]  # B instructions
    batch_size: int
    batched: bool  # whether the caller sent a batch (controls the output shape)
    fmt: str  # FLAT | NESTED


def detect_format(obs: dict) -> str:
    if obs and set(obs) <= set(NESTED_GROUPS) and any(isinstance(v, dict) for v in obs.values()):
        return NESTED
    return FLAT


def _as_array(name: str, value: Any, kind: str) -> np.ndarray:
    """Arrays pass; nested lists (HTTP/JSON clients) become arrays of the modality's dtype."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        try:
            if kind == "video":
                arr = np.asarray(value)
                if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 255)):
                    raise ObservationError(f"{name}: image lists must hold integers in 0..255")
                return arr.astype(np.uint8)
            return np.asarray(value, dtype=np.float32)
        except ObservationError:
            raise
        except (TypeError, ValueError, OverflowError) as e:
            raise ObservationError(f"{name}: cannot convert the list to a numeric array ({e})") from None
    raise ObservationError(f"{name}: expected an array, got {type(value).__name__}")


def _language_list(name: str, value: Any, batch: int, batched: bool) -> list[str]:
    if isinstance(value, np.ndarray) and value.dtype.kind in "US":
        value = value.tolist()
    if isinstance(value, str):
        return [value] * batch
    if not isinstance(value, (list, tuple)) or not value:
        raise ObservationError(f"{name}: expected a non-empty list of strings, got {type(value).__name__}")
    items: list[str] = []
    for v in value:
        if isinstance(v, (list, tuple)) and v and isinstance(v[0], str):
            v = v[0]  # N1.6 [[str]] per sample
        if not isinstance(v, str):
            raise ObservationError(f"{name}: expected strings, found {type(v).__name__}")
        items.append(v)
    if not batched:
        return [items[0]]  # upstream N1.5: list of length T, first entry used
    if len(items) != batch:
        raise ObservationError(f"{name}: {len(items)} instructions for a batch of {batch}")
    return items


_LOGGED_OWN_ACTIONS: set[tuple[str, ...]] = set()


def _ignore_own_actions(keys: list[str]) -> None:
    """Upstream's N1.5 eval_policy.py sends the dataset step, `action.*` keys included: those are
    the policy's own outputs, so they are dropped (said once per key set), never an error."""
    key = tuple(sorted(keys))
    if key not in _LOGGED_OWN_ACTIONS:
        _LOGGED_OWN_ACTIONS.add(key)
        log.info("ignoring the policy's own action keys sent in the observation: %s", list(key))


def parse_observation(obs: Any, spec: ObservationSpec, max_batch: int | None = None) -> Observation:
    """Validate `obs` (either format) against `spec`; raise ObservationError naming the problem.
    `max_batch`: the largest batch accepted (deploy.server.max_batch)."""
    if not isinstance(obs, dict):
        raise ObservationError(f"observation must be a dict, got {type(obs).__name__}")
    fmt = detect_format(obs)
    videos: dict[str, Any] = {}
    states: dict[str, Any] = {}
    lang: dict[str, Any] = {}
    unknown: list[str] = []
    own_actions: list[str] = []
    if fmt == NESTED:
        for group in NESTED_GROUPS:
            sub = obs.get(group, {})
            if not isinstance(sub, dict):
                raise ObservationError(f"observation['{group}'] must be a dict, got {type(sub).__name__}")
            for k in sub:
                if not isinstance(k, str):
                    raise ObservationError(f"observation['{group}'] has a non-string key {k!r}")
            {"video": videos, "state": states, "language": lang}[group].update(sub)
    else:
        for k, v in obs.items():
            if not isinstance(k, str):
                raise ObservationError(f"observation keys must be strings, got {k!r}")
            if k.startswith("video."):
                videos[k[len("video.") :]] = v
            elif k.startswith("state."):
                states[k[len("state.") :]] = v
            elif "annotation" in k:
                lang[k] = v
            elif k.startswith("action.") and k[len("action.") :] in spec.action:
                own_actions.append(k)
            else:
                unknown.append(k)
        if own_actions:
            _ignore_own_actions(own_actions)
    prefix_v, prefix_s = ("video.", "state.") if fmt == FLAT else ("video/", "state/")

    missing = [prefix_v + k for k in spec.video if k not in videos]
    missing += [prefix_s + k for k in spec.state if k not in states]
    if missing:
        raise ObservationError(
            f"missing observation keys {missing}; this policy expects video {list(spec.video)}, "
            f"state {list(spec.state)} ({fmt} format)"
        )
    unknown += [prefix_v + k for k in videos if k not in spec.video]
    unknown += [prefix_s + k for k in states if k not in spec.state]
    if unknown and spec.strict:
        raise ObservationError(
            f"unknown observation keys {unknown}; this policy expects video {list(spec.video)}, "
            f"state {list(spec.state)} (deploy.policy.strict=false ignores extra keys)"
        )

    state_arrays = {k: _as_array(prefix_s + k, states[k], "state") for k in spec.state}
    video_arrays = {k: _as_array(prefix_v + k, videos[k], "video") for k in spec.video}
    if fmt == NESTED:
        batched = True
    elif state_arrays:
        batched = all(a.ndim == 3 for a in state_arrays.values())
    else:
        batched = all(a.ndim == 5 for a in video_arrays.values()) and bool(video_arrays)

    batch: int | None = None

    def _batch_of(name: str, arr: np.ndarray) -> None:
        nonlocal batch
        if batch is None:
            batch = arr.shape[0]
        elif arr.shape[0] != batch:
            raise ObservationError(f"{name}: batch size {arr.shape[0]} differs from {batch}")

    out_state: dict[str, np.ndarray] = {}
    for k, a in state_arrays.items():
        name = prefix_s + k
        if a.dtype.kind != "f":
            raise ObservationError(f"{name}: state must be a float array, got dtype {a.dtype}")
        if fmt == NESTED and spec.strict and a.dtype != np.float32:
            raise ObservationError(f"{name}: N1.6 nested states must be float32, got {a.dtype}")
        want_ndim = 3 if batched else 2
        if a.ndim != want_ndim:
            raise ObservationError(
                f"{name}: expected {'(B, T, D)' if batched else '(T, D)'} , got shape {a.shape}"
                + ("" if fmt == NESTED else " (all state arrays 3-D = batched, all 2-D = single)")
            )
        if not batched:
            a = a[None]
        if a.shape[1] != spec.state_horizon or a.shape[2] != spec.state[k]:
            raise ObservationError(
                f"{name}: expected T={spec.state_horizon}, D={spec.state[k]}, got shape {a.shape[1:]}"
            )
        if not np.isfinite(a).all():
            raise ObservationError(f"{name}: contains NaN or inf")
        _batch_of(name, a)
        out_state[k] = a.astype(np.float32, copy=False)

    out_video: dict[str, np.ndarray] = {}
    for k, a in video_arrays.items():
        name = prefix_v + k
        if a.dtype != np.uint8:
            raise ObservationError(f"{name}: images must be uint8 RGB, got dtype {a.dtype}")
        want_ndim = 5 if batched else 4
        if a.ndim != want_ndim or a.shape[-1] != 3:
            raise ObservationError(
                f"{name}: expected {'(B, T, H, W, 3)' if batched else '(T, H, W, 3)'}, got shape {a.shape}"
            )
        if not batched:
            a = a[None]
        if a.shape[1] != spec.video_horizon:
            raise ObservationError(f"{name}: expected T={spec.video_horizon} frames, got {a.shape[1]}")
        res = spec.video.get(k)
        if res is not None and tuple(a.shape[2:4]) != tuple(res):
            raise ObservationError(
                f"{name}: image size {a.shape[2]}x{a.shape[3]} (HxW) differs from the {res[0]}x{res[1]} "
                "the policy was trained on; resize on the client"
            )
        _batch_of(name, a)
        out_video[k] = a

    if batch is None:
        batch = 1
    if batch == 0:
        raise ObservationError("batch size 0: send at least one sample (the first axis of every array)")
    if max_batch is not None and batch > max_batch:
        raise ObservationError(
            f"batch size {batch} exceeds this server's limit of {max_batch} (deploy.server.max_batch); "
            "split the batch"
        )
    language: list[str]
    if spec.language_key is None:
        language = [""] * batch
    else:
        if spec.language_key in lang:
            lkey = spec.language_key
        elif len(lang) == 1 and not (fmt == NESTED and spec.strict):
            lkey = next(iter(lang))  # upstream N1.5 accepts any single annotation.* key
        else:
            raise ObservationError(
                f"language: expected key '{spec.language_key}', got {sorted(lang) or 'none'}"
            )
        language = _language_list(lkey, lang[lkey], batch, batched)
    return Observation(out_video, out_state, language, batch, batched, fmt)


def format_action(actions: dict[str, np.ndarray], obs: Observation) -> dict[str, np.ndarray]:
    """Per-key (B, T, D) actions -> the caller's format and batching."""
    if obs.fmt == NESTED:
        return {k: np.asarray(v, dtype=np.float32) for k, v in actions.items()}
    if obs.batched:
        return {f"action.{k}": np.asarray(v, dtype=np.float32) for k, v in actions.items()}
    return {f"action.{k}": np.asarray(v[0], dtype=np.float32) for k, v in actions.items()}
