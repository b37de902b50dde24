"""GR00T N1.5 packing: concatenate keys in the configured order, pad to the model's widths.

state (1, ΣD) -> (1, 64) float32 + state_mask; action (16, ΣD) -> (16, 32) float32 + action_mask;
embodiment_id from the tag through the model family's projector table (gr00t_exp/embodiment/ids.py).
Upstream truncates state beyond 64 dims silently; here that is an error (it would drop real data
without notice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gr00t_exp.embodiment.ids import DEFAULT_FAMILY, projector_index


def concat_keys(parts: Mapping[str, np.ndarray], keys: Sequence[str], what: str) -> np.ndarray:
    missing = [k for k in keys if k not in parts]
    if missing:
        raise KeyError(f"{what}: missing key(s) {', '.join(missing)} (have: {', '.join(parts)})")
    return np.concatenate([np.asarray(parts[k], dtype=np.float32) for k in keys], axis=-1)


def pad(x: np.ndarray, width: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad the last axis to `width`; returns (padded float32, bool mask of real columns)."""
    d = x.shape[-1]
    if d > width:
        raise ValueError(
            f"{what} has {d} dims after normalisation but the model takes {width} "
            f"(embodiment.max_{what}_dim); drop keys or raise the limit"
        )
    out = np.zeros(x.shape[:-1] + (width,), np.float32)
    out[..., :d] = x
    mask = np.zeros(out.shape, bool)
    mask[..., :d] = True
    return out, mask


def pack_sample(
    video: np.ndarray,
    state: Mapping[str, np.ndarray],
    action: Mapping[str, np.ndarray] | None,
    language: str,
    state_keys: Sequence[str],
    action_keys: Sequence[str],
    embodiment_tag: str,
    max_state_dim: int = 64,
    max_action_dim: int = 32,
    action_horizon: int | None = None,
    model_family: str = DEFAULT_FAMILY,
) -> dict:
    s, s_mask = pad(concat_keys(state, state_keys, "state"), max_state_dim, "state")
    out = {
        "video": np.ascontiguousarray(video, dtype=np.uint8),
        "state": s,
        "state_mask": s_mask,
        "embodiment_id": np.int64(projector_index(model_family, embodiment_tag)),
        "language": language,
    }
    if action is not None:
        a = concat_keys(action, action_keys, "action")
        if action_horizon is not None and a.shape[0] != action_horizon:
            raise ValueError(f"action has {a.shape[0]} steps, the model's action horizon is {action_horizon}")
        out["action"], out["action_mask"] = pad(a, max_action_dim, "action")
    return out
