"""Per-step sampling indices and episode-boundary padding (N1.5 semantics, docs/upstream.md "Sampling").

For a sample at row `base` of an episode of length L, a key with `delta_indices` d reads rows
base + d. Out-of-range rows are handled per modality:
- video and language: indices clamped to [0, L-1] (the first/last frame repeats);
- absolute state/action: the first/last row repeats (`first_last`);
- relative state/action (modality `absolute: false`): zeros (`zero`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def step_indices(base: int, delta_indices: Sequence[int] | np.ndarray) -> np.ndarray:
    return int(base) + np.asarray(delta_indices, dtype=np.int64)


def clamp_indices(idx: np.ndarray, length: int) -> np.ndarray:
    return np.clip(idx, 0, length - 1)


def gather_padded(rows: np.ndarray, idx: np.ndarray, absolute: bool) -> np.ndarray:
    """rows (L, D) -> (len(idx), D): in-range rows as they are; out-of-range rows repeat the
    first/last row when `absolute`, else are zero."""
    length = len(rows)
    out = rows[clamp_indices(idx, length)]
    if not absolute:
        outside = (idx < 0) | (idx >= length)
        if outside.any():
            out = out.copy()
            out[outside] = 0
    return out


def episode_offsets(lengths: Sequence[int]) -> np.ndarray:
    """Start of each episode in the flat sample index (every step of every episode is a sample)."""
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))])


def locate(index: int, offsets: np.ndarray) -> tuple[int, int]:
    """Flat sample index -> (episode position, base row)."""
    if index < 0 or index >= offsets[-1]:
        raise IndexError(f"sample index {index} out of range [0, {int(offsets[-1])})")
    ep = int(np.searchsorted(offsets, index, side="right") - 1)
    return ep, int(index - offsets[ep])
