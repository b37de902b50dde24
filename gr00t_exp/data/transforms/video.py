"""Video augmentation on uint8 frames: crop (95 %), resize (224), colour jitter.

Upstream N1.5 semantics (docs/upstream.md "Video augmentation"): the crop is 95 % of the frame resolution,
random in training and centred in eval, then an antialiased bilinear resize to 224x224, then
(training only) a colour jitter with brightness 0.3, contrast 0.4, saturation 0.5, hue 0.08 in a
random order. One crop and one jitter are drawn per *sample* and applied to every view and
frame of it.

Speed: the crop is a view, the resize runs on uint8 (torch's antialiased uint8 kernel), and the
whole jitter is folded into one 3x3 matrix + offset per frame, applied in a single batched
matmul. Brightness, contrast and saturation are linear, so the folding is exact up to the
clamping torchvision does between the steps (here only at the end); hue is a rotation about
the grey axis (YIQ) instead of torchvision's HSV shift: the same kind and range of hue change,
not bit-identical pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gr00t_exp.data.config import VideoTransformConfig

_GREY = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32)
_RGB2YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=torch.float32,
)
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(x, np.ndarray) and not x.flags.writeable:  # e.g. a read-only memmap slice
        x = np.array(x)
    return torch.as_tensor(x)


@dataclass
class VideoTransform(VideoTransformConfig):
    """The parameters are the embodiment's `video` config (VideoTransformConfig, declared once);
    `training` picks random crop + jitter (True) or the centre crop alone."""

    training: bool = True

    @classmethod
    def from_config(cls, cfg: Any, training: bool = True) -> VideoTransform:
        """cfg: an embodiment's `video` section (VideoTransformConfig, or a config node of it)."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(VideoTransformConfig)}, training=training)

    def crop_size(self, h: int, w: int) -> tuple[int, int]:
        return int(h * self.crop_scale), int(w * self.crop_scale)

    def __call__(
        self, frames: np.ndarray | torch.Tensor, generator: torch.Generator | None = None
    ) -> np.ndarray:
        """One sample: uint8 (..., H, W, 3) (e.g. (T, V, H, W, 3)) -> uint8 (..., resize, resize, 3)."""
        return self.batch(_as_tensor(frames).unsqueeze(0), generator)[0]

    def jitters(self) -> bool:
        """Whether this transform applies a colour jitter (training with a non-zero range)."""
        return self.training and bool(self.brightness or self.contrast or self.saturation or self.hue)

    def sample_params(
        self, b: int, h: int, w: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The random draws of `b` samples of (H, W) frames, in the order `batch` consumes them:
        crop offsets `top`, `left` (B,) int64, then (when jittering) the `sample_jitter` factors.
        The device-side augmentation (transforms/video_batch.py) applies the same draws."""
        ch, cw = self.crop_size(h, w)
        if self.training:
            top = torch.randint(0, h - ch + 1, (b,), generator=generator)
            left = torch.randint(0, w - cw + 1, (b,), generator=generator)
        else:
            top = torch.full((b,), int(round((h - ch) / 2.0)), dtype=torch.int64)
            left = torch.full((b,), int(round((w - cw) / 2.0)), dtype=torch.int64)
        params = {"top": top, "left": left}
        if self.jitters():
            params.update(self.sample_jitter(b, generator))
        return params

    def batch(
        self,
        frames: torch.Tensor | np.ndarray,
        generator: torch.Generator | None = None,
        params: dict[str, torch.Tensor] | None = None,
    ) -> np.ndarray:
        """B samples at once: uint8 (B, ..., H, W, 3); each sample gets its own crop and jitter,
        shared by all its frames/views. `params` (from `sample_params`) replaces the draws."""
        x = _as_tensor(frames)
        if x.dtype != torch.uint8:
            raise TypeError(f"video frames must be uint8, got {x.dtype}")
        lead = x.shape[1:-3]
        b, (h, w) = x.shape[0], x.shape[-3:-1]
        n = int(np.prod(lead)) if len(lead) else 1
        x = x.reshape(b, n, h, w, 3)
        ch, cw = self.crop_size(h, w)
        p = self.sample_params(b, h, w, generator) if params is None else params
        tops, lefts = p["top"].tolist(), p["left"].tolist()
        crops = torch.stack(
            [x[i, :, t : t + ch, c : c + cw] for i, (t, c) in enumerate(zip(tops, lefts, strict=True))]
        )
        y = crops.reshape(b * n, ch, cw, 3).permute(0, 3, 1, 2)  # NCHW view of NHWC = channels_last
        if (ch, cw) != (self.resize, self.resize):
            y = F.interpolate(
                y.contiguous(memory_format=torch.channels_last),
                size=(self.resize, self.resize),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        if "order" in p:
            # planar float layout: per-channel axpy passes beat a (P,3)x(3,3) bmm by ~5x
            planar = y.contiguous().reshape(b, n, 3, -1).float()
            y = self._jitter(planar, p).reshape(b * n, 3, self.resize, self.resize)
        y = y.permute(0, 2, 3, 1)  # (B*N, S, S, 3)
        return y.reshape(b, *lead, self.resize, self.resize, 3).contiguous().numpy()

    # -- colour jitter -----------------------------------------------------------------------
    def sample_jitter(self, b: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        def uniform(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(b, generator=generator)

        return {
            "brightness": uniform(max(0.0, 1 - self.brightness), 1 + self.brightness),
            "contrast": uniform(max(0.0, 1 - self.contrast), 1 + self.contrast),
            "saturation": uniform(max(0.0, 1 - self.saturation), 1 + self.saturation),
            "hue": uniform(-self.hue, self.hue),
            "order": torch.stack([torch.randperm(4, generator=generator) for _ in range(b)]),
        }

    def _jitter(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """x: float planar (B, N, 3, P) in [0, 255] -> uint8 (B, N, 3, P); p: `sample_jitter` draws.

        One affine colour map per sample; the contrast step's offset depends on each frame's mean."""
        b, n = x.shape[:2]
        mean = x.mean(dim=-1)  # (B, N, 3): contrast blends towards the frame's mean grey
        eye = torch.eye(3)
        m = eye.expand(b, 3, 3).clone()
        off = torch.zeros(b, n, 3)
        for i in range(b):
            mi, oi = m[i], off[i]
            for op in p["order"][i].tolist():
                if op == 0:  # brightness: x * f
                    a, c = float(p["brightness"][i]) * eye, torch.zeros(n, 3)
                elif op == 1:  # contrast: f * x + (1 - f) * mean grey of the frame
                    f = float(p["contrast"][i])
                    grey_mean = (mean[i] @ mi.T + oi) @ _GREY  # (n,)
                    a, c = f * eye, ((1 - f) * grey_mean)[:, None].expand(n, 3)
                elif op == 2:  # saturation: f * x + (1 - f) * grey(x)
                    f = float(p["saturation"][i])
                    a, c = f * eye + (1 - f) * _GREY.expand(3, 3), torch.zeros(n, 3)
                else:  # hue: rotate chroma (I, Q) by 2*pi*h
                    th = 2 * math.pi * float(p["hue"][i])
                    rot = torch.tensor(
                        [[1, 0, 0], [0, math.cos(th), -math.sin(th)], [0, math.sin(th), math.cos(th)]]
                    )
                    a, c = _YIQ2RGB @ rot @ _RGB2YIQ, torch.zeros(n, 3)
                mi, oi = a @ mi, oi @ a.T + c
            m[i], off[i] = mi, oi
        mats = m[:, None, :, :, None].expand(b, n, 3, 3, 1)
        offs = (off + 0.5)[..., None]  # +0.5: the uint8 cast truncates, so this rounds
        out = torch.empty_like(x)
        for c in range(3):
            o = out[:, :, c]
            torch.mul(x[:, :, 0], mats[:, :, c, 0], out=o)
            o.addcmul_(x[:, :, 1], mats[:, :, c, 1]).addcmul_(x[:, :, 2], mats[:, :, c, 2]).add_(
                offs[:, :, c]
            )
        return out.clamp_(0, 255).to(torch.uint8)
