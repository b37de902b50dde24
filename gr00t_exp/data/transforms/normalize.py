"""State/action normalisation (N1.5 semantics, docs/upstream.md) with exact inverses.

| mode     | forward                                   | inverse                        | degenerate dims         |
|----------|-------------------------------------------|--------------------------------|-------------------------|
| min_max  | 2 (x - min) / (max - min) - 1 (no clip)   | (y + 1) / 2 (max - min) + min  | min == max -> 0 / min   |
| q99      | 2 (x - q01) / (q99 - q01) - 1, clip ±1    | (y + 1) / 2 (q99 - q01) + q01  | q01 == q99 -> raw value |
| mean_std | (x - mean) / std                          | y std + mean                   | std == 0 -> raw value   |
| binary   | x > 0.5 -> {0, 1}                         | y > 0.5 -> {0, 1}              |                         |
| sin_cos  | cat[sin x, cos x] (doubles the width)     | atan2(sin, cos)                | (state only)            |
| none     | identity                                  | identity                       |                         |

q99 is an exact inverse inside [q01, q99] (values outside are clipped by design). sin_cos
recovers angles modulo 2 pi. Keys with a target rotation (`*_target_rotations`) are converted
from the modality's `rotation_type` and min-max normalised with fixed bounds, as upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gr00t_exp.data.transforms import rotation as rot
from gr00t_exp.embodiment import EmbodimentLayout, bare

MODES = ("min_max", "q99", "mean_std", "binary", "sin_cos", "none")
_FIXED_BOUNDS = {"rotation_6d": 1.0, "quaternion": 1.0, "matrix": 1.0, "axis_angle": np.pi}


def _bound(kind: str) -> float:
    return np.pi if kind.startswith("euler_angles_") else _FIXED_BOUNDS[kind]


def normalize(x: np.ndarray, mode: str, st: Mapping[str, Any] | None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if mode == "none":
        return x
    if mode == "binary":
        return (x > 0.5).astype(np.float64)
    if mode == "sin_cos":
        return np.concatenate([np.sin(x), np.cos(x)], axis=-1)
    if st is None:
        raise ValueError(f"normalisation mode {mode!r} needs statistics")
    if mode == "min_max":
        lo, hi = np.asarray(st["min"], np.float64), np.asarray(st["max"], np.float64)
        span = hi - lo
        ok = span != 0
        return np.where(ok, 2 * (x - lo) / np.where(ok, span, 1) - 1, 0.0)
    if mode == "q99":
        lo, hi = np.asarray(st["q01"], np.float64), np.asarray(st["q99"], np.float64)
        span = hi - lo
        ok = span != 0
        return np.where(ok, np.clip(2 * (x - lo) / np.where(ok, span, 1) - 1, -1, 1), x)
    if mode == "mean_std":
        mu, sd = np.asarray(st["mean"], np.float64), np.asarray(st["std"], np.float64)
        ok = sd != 0
        return np.where(ok, (x - mu) / np.where(ok, sd, 1), x)
    raise ValueError(f"unknown normalisation mode {mode!r}; use one of {', '.join(MODES)}")


def unnormalize(y: np.ndarray, mode: str, st: Mapping[str, Any] | None) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if mode == "none":
        return y
    if mode == "binary":
        return (y > 0.5).astype(np.float64)
    if mode == "sin_cos":
        d = y.shape[-1] // 2
        return np.arctan2(y[..., :d], y[..., d:])
    if st is None:
        raise ValueError(f"normalisation mode {mode!r} needs statistics")
    if mode in ("min_max", "q99"):
        lo_k, hi_k = ("min", "max") if mode == "min_max" else ("q01", "q99")
        lo, hi = np.asarray(st[lo_k], np.float64), np.asarray(st[hi_k], np.float64)
        span = hi - lo
        if mode == "q99":
            return np.where(span != 0, (y + 1) / 2 * span + lo, y)
        return (y + 1) / 2 * span + lo
    if mode == "mean_std":
        mu, sd = np.asarray(st["mean"], np.float64), np.asarray(st["std"], np.float64)
        return np.where(sd != 0, y * sd + mu, y)
    raise ValueError(f"unknown normalisation mode {mode!r}; use one of {', '.join(MODES)}")


def key_stats(stats: Mapping, modality: Any) -> dict[str, dict[str, dict[str, list]]]:
    """stats.json layout ({column: {stat: list}}) -> {"state": {key: stats}, "action": {...}}
    by slicing each column with the modality's start:end (the metadata.json layout)."""
    out: dict[str, dict] = {"state": {}, "action": {}}
    for group in ("state", "action"):
        for key, spec in getattr(modality, group).items():
            col = modality.column(group, key)
            if col not in stats:
                continue
            out[group][key] = {
                name: list(np.asarray(v, dtype=np.float64).reshape(-1)[spec.start : spec.end])
                for name, v in stats[col].items()
                if name in ("mean", "std", "min", "max", "q01", "q99")
            }
    return out


def is_key_layout(stats: Mapping) -> bool:
    """True for {"state": {key: {stat: list}}, "action": {...}}; False for stats.json's
    {column: {stat: list}} (whose "action" column maps stat names to lists)."""
    groups = [stats[g] for g in ("state", "action") if g in stats]
    return bool(groups) and all(
        isinstance(g, Mapping) and all(isinstance(v, Mapping) for v in g.values()) for g in groups
    )


class StateActionNormalizer:
    """Normalise state/action dicts per key as an embodiment config says.

    embodiment: an EmbodimentLayout (keys, modes, target rotations, source rotations and widths),
        or an EmbodimentConfig / DictConfig, joined with `modality` when given.
    stats: metadata.json layout {"state": {key: {min, max, ...}}, "action": {...}} (short or
        prefixed keys), or the stats.json column layout together with the dataset's modality.
    modality: the dataset's Modality, when `embodiment` is a config.
    """

    def __init__(self, embodiment: Any, stats: Mapping, modality: Any = None):
        if isinstance(embodiment, EmbodimentLayout):
            layout = embodiment
        elif modality is not None:
            layout = EmbodimentLayout.build(embodiment, modality)
        else:
            layout = EmbodimentLayout.keys_only(embodiment)
        self.layout = layout
        self.modality = layout.modality
        name = layout.name
        if not is_key_layout(stats):
            if self.modality is None:
                raise ValueError("stats in stats.json layout need the dataset modality to be sliced per key")
            stats = key_stats(stats, self.modality)
        self.stats = {
            g: {bare(k, g): v for k, v in (stats.get(g) or {}).items()} for g in ("state", "action")
        }
        self.specs = {g: {s.key: s for s in layout.specs(g)} for g in ("state", "action")}
        self.modes = {g: {k: s.normalization for k, s in self.specs[g].items()} for g in ("state", "action")}
        self.targets = {
            g: {k: s.target_rotation for k, s in self.specs[g].items() if s.target_rotation}
            for g in ("state", "action")
        }
        self.keys = {g: layout.keys(g) for g in ("state", "action")}
        for g in ("state", "action"):
            for k, mode in self.modes[g].items():
                if mode not in MODES:
                    raise ValueError(
                        f"embodiment {name}: {g}_normalization.{g}.{k} = {mode!r} is unknown; "
                        f"use one of {', '.join(MODES)}"
                    )
                if (
                    mode in ("min_max", "q99", "mean_std")
                    and k not in self.stats[g]
                    and k not in self.targets[g]
                ):
                    raise ValueError(
                        f"embodiment {name}: {g}.{k} uses {mode} but the statistics have no entry "
                        f"for it (have: {', '.join(self.stats[g]) or 'none'}); compute stats (mode=stats)"
                    )
            for k in self.targets[g]:
                spec = self.specs[g][k]
                if spec.width is not None and spec.rotation_type is None:
                    raise ValueError(
                        f"embodiment {name}: {g}_target_rotations.{g}.{k} needs the key's "
                        f"rotation_type in modality.json"
                    )
                if spec.width is not None and not spec.absolute:
                    raise ValueError(
                        f"embodiment {name}: {g}.{k} is relative (absolute=false); relative "
                        "rotations cannot be converted and normalised (upstream rule)"
                    )

    # -- per key ---------------------------------------------------------------------------------
    def _source_rotation(self, group: str, key: str) -> str | None:
        spec = self.specs[group].get(key)
        return spec.rotation_type if spec is not None else None

    def _mode_stats(self, group: str, key: str) -> tuple[str, Mapping | None]:
        tgt = self.targets[group].get(key)
        if tgt is not None:
            b = _bound(tgt)
            w = rot.WIDTH[tgt]
            return "min_max", {"min": [-b] * w, "max": [b] * w}
        return self.modes[group].get(key, "none"), self.stats[group].get(key)

    def normalize_key(self, group: str, key: str, x: np.ndarray) -> np.ndarray:
        key = bare(key, group)
        tgt = self.targets[group].get(key)
        if tgt is not None:
            x = rot.convert(x, self._source_rotation(group, key) or tgt, tgt)
        mode, st = self._mode_stats(group, key)
        return normalize(x, mode, st).astype(np.float32)

    def unnormalize_key(self, group: str, key: str, y: np.ndarray) -> np.ndarray:
        key = bare(key, group)
        mode, st = self._mode_stats(group, key)
        x = unnormalize(y, mode, st)
        tgt = self.targets[group].get(key)
        if tgt is not None:
            x = rot.convert(x, tgt, self._source_rotation(group, key) or tgt)
        return x

    def width(self, group: str, key: str) -> int:
        """Width of a key after normalisation (sin_cos doubles it, target rotations change it)."""
        key = bare(key, group)
        tgt = self.targets[group].get(key)
        if tgt is not None:
            return rot.WIDTH[tgt]
        spec = self.specs[group].get(key)
        if key in self.stats[group]:
            w = len(self.stats[group][key]["min"])
        elif spec is not None and spec.width is not None:
            w = spec.width
        else:
            raise KeyError(f"width of {group}.{key} unknown: no statistics and no modality for it")
        return 2 * w if self.modes[group].get(key) == "sin_cos" else w

    # -- dicts -----------------------------------------------------------------------------------
    def normalize_state(self, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: self.normalize_key("state", k, v) for k, v in state.items()}

    def normalize_action(self, action: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: self.normalize_key("action", k, v) for k, v in action.items()}

    def unnormalize_state(self, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: self.unnormalize_key("state", k, v) for k, v in state.items()}

    def unnormalize_action(self, action: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """(16, ΣD) or (B, 16, ΣD) normalised actions in action_keys order (extra padded columns
        ignored), or a dict -> {"action.<key>": raw values}."""
        if isinstance(action, Mapping):
            return {k: self.unnormalize_key("action", k, v) for k, v in action.items()}
        a = np.asarray(action, dtype=np.float64)
        out, start = {}, 0
        for k in self.keys["action"]:
            w = self.width("action", k)
            if start + w > a.shape[-1]:
                raise ValueError(f"action array has {a.shape[-1]} columns; action keys need {start + w}+")
            out[f"action.{k}"] = self.unnormalize_key("action", k, a[..., start : start + w])
            start += w
        return out
