"""Batch collation: stack numeric keys, run the model's processor on images + text.

`Gr00tCollator(processor)` accepts any callable `processor(images, texts) -> dict` with the
Gr00tProcessor signature (docs/interfaces.md): images[i] is sample i's frames, frame-major then
view, each uint8 (H, W, 3). It returns the model batch: eagle_input_ids, eagle_attention_mask,
eagle_pixel_values, state, state_mask, action, action_mask, embodiment_id.

Deferred augmentation (data.augment_on=gpu, training only): the samples then carry raw frames and
their augmentation draws (`augment`). The batch keeps `video` uint8 (B, T, V, H, W, 3) and the
stacked draws (`augment`, transforms/video_batch.py) instead of `eagle_pixel_values`, which the
LightningModule computes on the device; the token ids are built here as the processor would build
them for one tile per image (the augmented frames are processor-tile sized).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

NUMERIC_KEYS = ("state", "state_mask", "action", "action_mask", "embodiment_id")
AUGMENT_KEY = "augment"
# Per-batch constants of the deferred augmentation: plain ints, so reading them on the device side
# never waits for the GPU.
AUGMENT_SIZES = ("crop_h", "crop_w", "size")


def stack_augment(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-sample augmentation draws -> batch tensors (B, ...); the sizes must agree (one frame size)."""
    first = samples[0][AUGMENT_KEY]
    out: dict[str, Any] = {}
    for k in first:
        if k in AUGMENT_SIZES:
            values = {int(s[AUGMENT_KEY][k]) for s in samples}
            if len(values) > 1:
                raise ValueError(
                    f"Gr00tCollator: samples of one batch have different {k} {sorted(values)} (frames of "
                    "different sizes); set data.cache.height/width to store them at one size, or "
                    "data.augment_on=cpu"
                )
            out[k] = values.pop()
        else:
            out[k] = torch.from_numpy(np.stack([np.asarray(s[AUGMENT_KEY][k]) for s in samples]))
    return out


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
        if AUGMENT_KEY in samples[0]:
            batch.update(self._deferred(samples))
        elif self.processor is not None:
            # (T, V, H, W, 3) -> T*V frames, time-major then view (upstream's image order)
            images = [s["video"].reshape(-1, *s["video"].shape[-3:]) for s in samples]
            texts = [s["language"] for s in samples]
            batch.update(self.processor(images, texts))
        else:  # no processor: keep raw uint8 video and text (benchmarks, inspection)
            batch["video"] = torch.from_numpy(np.stack([s["video"] for s in samples]))
            batch["language"] = [s["language"] for s in samples]
        return batch

    def _deferred(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Raw frames + stacked draws; with a processor, its token ids (one tile per image) and its
        image normalisation, so the device side needs nothing but the batch."""
        # default_collate stacks into shared memory when in a worker: the batch's largest array
        # (raw frames, ~6 MB at 32 x 256x256) then crosses to the main process without another copy.
        frames = [torch.from_numpy(np.ascontiguousarray(s["video"])) for s in samples]
        # One sample (serving): a view, no copy (a pinned staging buffer stays pinned).
        video = frames[0].unsqueeze(0) if len(frames) == 1 else default_collate(frames)
        aug = stack_augment(samples)
        out: dict[str, Any] = {"video": video, AUGMENT_KEY: aug}
        texts = [s["language"] for s in samples]
        p = self.processor
        if p is None:
            out["language"] = texts
            return out
        needed = ("sample_input_ids", "pad", "pixel_normalization", "tile_size")
        if not all(hasattr(p, name) for name in needed):
            raise TypeError(
                f"Gr00tCollator: deferred (device-side) augmentation needs a Gr00tProcessor-like processor "
                f"with {', '.join(needed)}; {type(p).__name__} lacks some: use data.augment_on=cpu"
            )
        if aug["size"] != p.tile_size:
            # A frame of another size would be tiled by the processor: not done on the device.
            raise ValueError(
                f"Gr00tCollator: augmented frames are {aug['size']}x{aug['size']} but the processor's tile is "
                f"{p.tile_size}; use data.augment_on=cpu or embodiment.video.resize={p.tile_size}"
            )
        images = int(np.prod(video.shape[1:-3]))  # T * V per sample
        ids, mask = p.pad([p.sample_input_ids([1] * images, t) for t in texts])
        aug["mean"], aug["std"] = p.pixel_normalization()
        out["eagle_input_ids"], out["eagle_attention_mask"] = ids, mask
        return out
