"""GR00T N1.6 state / action processing: normalisation, sin/cos state encoding, relative actions.

Per embodiment (the `modality_configs` of processor_config.json, the stats of statistics.json),
groups are processed in `modality_keys` order, in float64 (the statistics are float64), cast to
float32 at the end:

- state groups in `sin_cos_embedding_keys` (with apply_sincos_state_encoding): [sin(v) | cos(v)] of
  the raw values (2 D wide, no normalisation);
- groups in `mean_std_embedding_keys`: (x - mean) / std (where std is 0 the value is kept);
- other groups: min-max to [-1, 1] with min/max (q01/q99 with use_percentiles); dims whose range is
  below 1e-8 map to 0;
- clipping to [-1, 1] (clip_outliers): every action group, state min-max groups only (state
  mean/std groups are NOT clipped);
- RELATIVE action groups (use_relative_action): a - s_last (the last state frame of the same group,
  or of `state_key`), normalised with the per-step (T, D) `relative_action` statistics.

`decode_action` inverts the action path (un-normalise, relative -> absolute with the same state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RANGE_EPS = 1e-8


@dataclass
class ActionSpec:
    rep: str = "ABSOLUTE"  # RELATIVE | DELTA | ABSOLUTE
    type: str = "NON_EEF"  # EEF | NON_EEF
    format: str = "DEFAULT"
    state_key: str | None = None


@dataclass
class ModalitySpec:
    delta_indices: list[int]
    modality_keys: list[str]
    sin_cos_embedding_keys: list[str] = field(default_factory=list)
    mean_std_embedding_keys: list[str] = field(default_factory=list)
    action_configs: list[ActionSpec] | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> ModalitySpec:
        acts = d.get("action_configs")
        specs = None
        if acts is not None:
            if len(acts) != len(d["modality_keys"]):
                raise ValueError(
                    f"{where}: action_configs has {len(acts)} entries for {len(d['modality_keys'])} keys"
                )
            specs = [
                ActionSpec(**{k: v for k, v in a.items() if k in ActionSpec.__dataclass_fields__})
                for a in acts
            ]
        return cls(
            delta_indices=list(d.get("delta_indices", [0])),
            modality_keys=list(d["modality_keys"]),
            sin_cos_embedding_keys=list(d.get("sin_cos_embedding_keys") or []),
            mean_std_embedding_keys=list(d.get("mean_std_embedding_keys") or []),
            action_configs=specs,
        )


def _stats(stats: Mapping[str, Any], key: str, where: str) -> dict[str, np.ndarray]:
    if key not in stats:
        raise KeyError(
            f"{where}: no statistics for `{key}` (have {sorted(stats)}); recompute statistics.json"
        )
    return {k: np.asarray(v, dtype=np.float64) for k, v in stats[key].items()}


def minmax(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    rng = hi - lo
    ok = rng >= RANGE_EPS
    out = (x - lo) / np.where(ok, rng, 1.0) * 2.0 - 1.0
    return np.where(ok, out, 0.0)


def meanstd(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    ok = std > 0
    return np.where(ok, (x - mean) / np.where(ok, std, 1.0), x)


class StateActionProcessor:
    """State / action normalisation of one checkpoint (all its embodiments)."""

    def __init__(
        self, modality_configs: Mapping[str, Any], statistics: Mapping[str, Any], settings: Mapping[str, Any]
    ):
        self.modalities = {
            tag: {m: ModalitySpec.from_dict(d, f"processor_config.json: {tag}.{m}") for m, d in cfg.items()}
            for tag, cfg in modality_configs.items()
        }
        self.statistics = statistics
        self.use_percentiles = bool(settings.get("use_percentiles", False))
        self.clip_outliers = bool(settings.get("clip_outliers", True))
        self.apply_sincos = bool(settings.get("apply_sincos_state_encoding", False))
        self.use_relative_action = bool(settings.get("use_relative_action", False))

    def _tag(self, tag: str) -> tuple[dict[str, ModalitySpec], Mapping[str, Any]]:
        if tag not in self.modalities:
            raise KeyError(
                f"processor_config.json: no modality config for embodiment {tag!r} (have "
                f"{sorted(self.modalities)}); fine-tune with that embodiment or pick one of these"
            )
        if tag not in self.statistics:
            raise KeyError(
                f"statistics.json: no statistics for embodiment {tag!r} (have {sorted(self.statistics)})"
            )
        return self.modalities[tag], self.statistics[tag]

    def _bounds(self, s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return (s["q01"], s["q99"]) if self.use_percentiles else (s["min"], s["max"])

    # ---- state -------------------------------------------------------------------------
    def state(self, tag: str, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """{group: (T, D)} raw state -> (T, sum of widths) float32."""
        mods, stats = self._tag(tag)
        spec = mods["state"]
        parts = []
        for key in spec.modality_keys:
            x = np.asarray(raw[key], dtype=np.float64)
            if self.apply_sincos and key in spec.sin_cos_embedding_keys:
                parts.append(np.concatenate([np.sin(x), np.cos(x)], axis=-1))
                continue
            s = _stats(stats["state"], key, f"statistics.json: {tag}.state")
            if key in spec.mean_std_embedding_keys:
                parts.append(meanstd(x, s["mean"], s["std"]))
            else:
                y = minmax(x, *self._bounds(s))
                parts.append(np.clip(y, -1.0, 1.0) if self.clip_outliers else y)
        return np.concatenate(parts, axis=-1).astype(np.float32)

    # ---- action ------------------------------------------------------------------------
    def _action_specs(self, tag: str) -> tuple[ModalitySpec, list[ActionSpec], Mapping[str, Any]]:
        mods, stats = self._tag(tag)
        spec = mods["action"]
        acts = spec.action_configs or [ActionSpec() for _ in spec.modality_keys]
        return spec, acts, stats

    def _is_relative(self, a: ActionSpec) -> bool:
        return self.use_relative_action and a.rep.upper() == "RELATIVE"

    def _action_stats(
        self, tag: str, stats: Mapping[str, Any], key: str, relative: bool
    ) -> dict[str, np.ndarray]:
        if relative:
            return _stats(stats.get("relative_action", {}), key, f"statistics.json: {tag}.relative_action")
        return _stats(stats["action"], key, f"statistics.json: {tag}.action")

    @staticmethod
    def _per_step(v: np.ndarray, steps: int) -> np.ndarray:
        # Relative stats are (T_stats, D): step t uses row t.
        return v[:steps] if v.ndim == 2 else v

    def action(
        self, tag: str, raw: Mapping[str, np.ndarray], raw_state: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """{group: (T, D)} absolute action chunk -> (T, sum of D) normalised float32."""
        spec, acts, stats = self._action_specs(tag)
        parts = []
        for key, a in zip(spec.modality_keys, acts, strict=True):
            x = np.asarray(raw[key], dtype=np.float64)
            rel = self._is_relative(a)
            if rel:
                if a.type.upper() != "NON_EEF":
                    raise NotImplementedError(
                        f"processor_config.json: {tag}.action `{key}` is a RELATIVE {a.type} group; only "
                        "NON_EEF (joint-space) relative actions are supported"
                    )
                x = x - np.asarray(raw_state[a.state_key or key], dtype=np.float64)[-1]
            s = self._action_stats(tag, stats, key, rel)
            t = x.shape[0]
            if key in spec.mean_std_embedding_keys:
                y = meanstd(x, self._per_step(s["mean"], t), self._per_step(s["std"], t))
            else:
                lo, hi = self._bounds(s)
                y = minmax(x, self._per_step(lo, t), self._per_step(hi, t))
            parts.append(np.clip(y, -1.0, 1.0) if self.clip_outliers else y)
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def decode_action(
        self, tag: str, normalised: np.ndarray, raw_state: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """(T, >= sum of D) model output -> {group: (T, D)} absolute actions (float32)."""
        spec, acts, stats = self._action_specs(tag)
        y_all = np.asarray(normalised, dtype=np.float64)
        t = y_all.shape[0]
        out: dict[str, np.ndarray] = {}
        pos = 0
        for key, a in zip(spec.modality_keys, acts, strict=True):
            rel = self._is_relative(a)
            s = self._action_stats(tag, stats, key, rel)
            d = np.asarray(s["min"]).shape[-1]
            y = y_all[:, pos : pos + d]
            pos += d
            if key in spec.mean_std_embedding_keys:
                x = y * self._per_step(s["std"], t) + self._per_step(s["mean"], t)
            else:
                lo, hi = (self._per_step(v, t) for v in self._bounds(s))
                x = np.where(hi - lo >= RANGE_EPS, (y + 1.0) / 2.0 * (hi - lo) + lo, lo)
            if rel:
                x = x + np.asarray(raw_state[a.state_key or key], dtype=np.float64)[-1]
            out[key] = x.astype(np.float32)
        return out

    def action_width(self, tag: str) -> int:
        spec, acts, stats = self._action_specs(tag)
        return sum(
            np.asarray(self._action_stats(tag, stats, k, self._is_relative(a))["min"]).shape[-1]
            for k, a in zip(spec.modality_keys, acts, strict=True)
        )
