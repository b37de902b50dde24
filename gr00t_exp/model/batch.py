"""Moving a model batch between devices: tensors, and tensors one level inside lists (N1.6's
per-image pixel values) or dicts (the `augment` parameters of raw-frame batches)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def to_device(v: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """`v` with every tensor in it moved to `device` (lists, tuples and dicts rebuilt); the rest as is."""
    if torch.is_tensor(v):
        return v.to(device, non_blocking=non_blocking)
    if isinstance(v, (list, tuple)):
        return [to_device(x, device, non_blocking) for x in v]
    if isinstance(v, Mapping):
        return {k: to_device(x, device, non_blocking) for k, x in v.items()}
    return v
