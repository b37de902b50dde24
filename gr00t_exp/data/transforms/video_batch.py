"""Batched video augmentation on the training device: crop, resize, colour jitter, normalisation.

The same augmentation as `VideoTransform` (transforms/video.py, the reference, still used for
evaluation and serving), applied to a whole batch of raw uint8 frames where the batch lives (the
GPU in training), so the loader's CPU work is only fetching frames and collating. The random draws
are not made here: the dataset draws them in its worker with `VideoTransform.sample_params` (the
same generator and the same order as the CPU path), and the batch carries them. So for one seed
both paths apply the same crop and the same colour map, and the output differs from the CPU path
only by rounding (the antialiased resize runs in float32 here, as CUDA has no uint8 kernel for
it, rounded to integers after each separable pass as the uint8 kernel rounds). Keeping the draws in the worker also
keeps a batch a pure function of (seed, stream position), which resuming relies on
(train/data.py).

Batch layout (gr00t_exp/data/collate.py): `video` uint8 (B, T, V, H, W, 3) and `augment`:
`top`, `left` (B,) int64 crop offsets, `crop_h`, `crop_w`, `size` (ints, the same for the whole
batch: all its frames have one size), `mean`, `std` (3,) float32 (the processor's image
normalisation on the 0-255 scale) and, when jittering, `brightness`, `contrast`, `saturation`,
`hue` (B,) float32 and `order` (B, 4) int64 (0 brightness, 1 contrast, 2 saturation, 3 hue).
`BatchAugment` replaces both with `eagle_pixel_values` (B*T*V, 3, size, size) float32, frames
time-major then view within a sample (the processor's order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gr00t_exp.data.transforms.video import _GREY, _RGB2YIQ, _YIQ2RGB

VIDEO_KEY = "video"
AUGMENT_KEY = "augment"
PIXEL_KEY = "eagle_pixel_values"
JITTER_KEYS = ("brightness", "contrast", "saturation", "hue", "order")


def crop_resize(
    frames: torch.Tensor, top: torch.Tensor, left: torch.Tensor, crop: tuple[int, int], size: int
) -> torch.Tensor:
    """uint8 (B, N, H, W, 3) -> float32 (B, N, 3, size, size) holding integers in [0, 255].

    Sample b's frames are cropped at (top[b], left[b]) to `crop` by one gather (the crop size is the
    same for every sample, so no per-sample loop), then one antialiased bilinear resize."""
    b, n, h, w, _ = frames.shape
    ch, cw = crop
    dev = frames.device
    rows = (top.to(dev)[:, None] + torch.arange(ch, device=dev)).repeat_interleave(n, dim=0)  # (B*N, ch)
    cols = (left.to(dev)[:, None] + torch.arange(cw, device=dev)).repeat_interleave(n, dim=0)
    flat = frames.reshape(b * n, h, w, 3)
    which = torch.arange(b * n, device=dev)[:, None, None]
    crops = flat[which, rows[:, :, None], cols[:, None, :]]  # (B*N, ch, cw, 3)
    y = crops.permute(0, 3, 1, 2).float().contiguous()  # NCHW
    # Separable, width first, rounded after each pass: torch's CPU uint8 kernel (the reference)
    # stores the horizontal pass as uint8 before the vertical one; one 2-D float pass would differ
    # from it by one level on ~19 % of noise pixels, this on ~0.3 % (its fixed-point weights).
    for hw in ((ch, size), (size, size)):
        if tuple(y.shape[-2:]) != hw:
            y = F.interpolate(y, size=hw, mode="bilinear", antialias=True, align_corners=False)
            y = y.round_().clamp_(0, 255)
    return y.contiguous().reshape(b, n, 3, size, size)


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched (..., i, j) @ (..., j, k) as elementwise products + a sum: exact float32 on CUDA,
    where the trainer enables TF32 matmuls (10-bit mantissa: the colour maps would be off by
    ~1e-3, enough to move pixels across rounding boundaries)."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)


def _hue_matrices(hue: torch.Tensor) -> torch.Tensor:
    """(B,) hue shifts -> (B, 3, 3) RGB maps: rotate chroma (I, Q) by 2*pi*h about the grey axis."""
    th = (2 * math.pi) * hue.double()  # the CPU path builds the rotation in double precision
    cos, sin = torch.cos(th).float(), torch.sin(th).float()
    rot = torch.zeros(hue.shape[0], 3, 3, device=hue.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    yiq2rgb, rgb2yiq = _YIQ2RGB.to(hue.device), _RGB2YIQ.to(hue.device)
    return _mm(_mm(yiq2rgb.expand_as(rot), rot), rgb2yiq.expand_as(rot))


def jitter_affine(mean: torch.Tensor, p: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour jitter of every sample folded into one affine map, as the CPU path folds it.

    mean: (B, N, 3) per-frame channel means before the jitter (the contrast step blends towards the
    frame's mean grey *after* the steps before it). Returns m (B, 3, 3) and offset (B, N, 3): each
    pixel x of frame (b, n) maps to m[b] @ x + offset[b, n]. The per-sample order is handled by
    selecting, at each of the four steps, every sample's operation from the four candidates."""
    b, n = mean.shape[:2]
    dev = mean.device
    eye = torch.eye(3, device=dev)
    grey = _GREY.to(dev)
    bri, con, sat = (
        p[k].to(dev, torch.float32)[:, None, None] for k in ("brightness", "contrast", "saturation")
    )
    candidates = torch.stack(
        [bri * eye, con * eye, sat * eye + (1 - sat) * grey.expand(3, 3), _hue_matrices(p["hue"].to(dev))],
        dim=1,
    )  # (B, 4, 3, 3): brightness, contrast, saturation, hue
    order = p["order"].to(dev)
    rows = torch.arange(b, device=dev)
    m = eye.expand(b, 3, 3)
    off = torch.zeros(b, n, 3, device=dev)
    for k in range(4):  # four steps, each vectorised over the batch
        op = order[:, k]
        a = candidates[rows, op]  # (B, 3, 3)
        # (B, N): the frames' mean grey after the steps so far (row vectors times transposed maps)
        grey_mean = ((_mm(mean, m.transpose(1, 2)) + off) * grey).sum(-1)
        c = torch.where((op == 1)[:, None, None], (1 - con) * grey_mean[..., None].expand(b, n, 3), 0.0)
        m, off = _mm(a, m), _mm(off, a.transpose(1, 2)) + c
    return m, off


def apply_affine(x: torch.Tensor, m: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """x: float planar (B, N, 3, P) in [0, 255] -> float integers in [0, 255] (the uint8 values).

    The same per-channel multiply-adds and the same round-half-up as the CPU path, on the batch."""
    b, n = x.shape[:2]
    mats = m[:, None, :, :, None].expand(b, n, 3, 3, 1)
    offs = (off + 0.5)[..., None]  # +0.5 then floor: round half up, as the uint8 cast there
    out = torch.empty_like(x)
    for c in range(3):  # three output channels, each one fused pass over the batch
        o = out[:, :, c]
        torch.mul(x[:, :, 0], mats[:, :, c, 0], out=o)
        o.addcmul_(x[:, :, 1], mats[:, :, c, 1]).addcmul_(x[:, :, 2], mats[:, :, c, 2]).add_(offs[:, :, c])
    return out.clamp_(0, 255).floor_()


def augment_frames(video: torch.Tensor, p: Mapping[str, Any]) -> torch.Tensor:
    """Raw uint8 (B, ..., H, W, 3) + the batch's `augment` entries -> float32 (B, N, 3, S, S) of
    integers in [0, 255] (N = the product of the middle dims, e.g. T * V): the CPU path's output."""
    if video.dtype != torch.uint8:
        raise TypeError(f"video frames must be uint8, got {video.dtype}")
    b, (h, w) = video.shape[0], video.shape[-3:-1]
    x = video.reshape(b, -1, h, w, 3)
    size = int(p["size"])
    y = crop_resize(x, p["top"], p["left"], (int(p["crop_h"]), int(p["crop_w"])), size)
    if "order" in p:
        planar = y.reshape(b, x.shape[1], 3, size * size)
        m, off = jitter_affine(planar.mean(dim=-1), p)
        y = apply_affine(planar, m, off).reshape(y.shape)
    return y


def normalize_pixels(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Integers in [0, 255] (..., 3, S, S) -> the processor's (x - mean) / std, float32."""
    dev = y.device
    return y.sub_(mean.to(dev, torch.float32).view(3, 1, 1)).div_(std.to(dev, torch.float32).view(3, 1, 1))


class BatchAugment(nn.Module):
    """Applies a batch's deferred video augmentation where the batch is (after the host-to-device
    copy): `video` + `augment` -> `eagle_pixel_values`. A batch without them (evaluation batches,
    already processed on the CPU) passes through unchanged. No parameters or buffers: nothing of it
    goes into checkpoints."""

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(batch, dict) or AUGMENT_KEY not in batch:
            return batch
        p = batch.pop(AUGMENT_KEY)
        video = batch.pop(VIDEO_KEY)
        # float32 whatever the precision plugin does around it (bf16 would move the rounding)
        with torch.autocast(video.device.type, enabled=False):
            y = augment_frames(video, p)
            b, n = y.shape[:2]
            batch[PIXEL_KEY] = normalize_pixels(y.reshape(b * n, *y.shape[2:]), p["mean"], p["std"])
        return batch
