"""Batch collation: stack numeric keys, run the model's processor on images + text.

`Gr00tCollator(processor)` accepts any callable `processor(images, texts) -> dict` with the
Gr00tProcessor signature (docs/interfaces.md): images[i] is sample i's frames, frame-major then
view, each uint8 (H, W, 3). It returns the model batch: eagle_input_ids, eagle_attention_mask,
eagle_pixel_values, state, state_mask, action, action_mask, embodiment_id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

NUMERIC_KEYS = ("state", "state_mask", "action", "action_mask", "embodiment_id")


class Gr00tCollator:
    def __init__(self, processor: Callable[..., dict[str, torch.Tensor]] | None):
        self.processor = processor

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not samples:
            raise ValueError("Gr00tCollator: empty batch")
        batch: dict[str, Any] = {}
        for k in NUMERIC_KEYS:
            if k in samples[0]:
                batch[k] = torch.from_numpy(np.stack([np.asarray(s[k]) for s in samples]))
        if self.processor is not None:
            # (T, V, H, W, 3) -> T*V frames, time-major then view (upstream's image order)
            images = [s["video"].reshape(-1, *s["video"].shape[-3:]) for s in samples]
            texts = [s["language"] for s in samples]
            batch.update(self.processor(images, texts))
        else:  # no processor: keep raw uint8 video and text (benchmarks, inspection)
            batch["video"] = torch.from_numpy(np.stack([s["video"] for s in samples]))
            batch["language"] = [s["language"] for s in samples]
        return batch
