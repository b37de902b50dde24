"""SigLIP-2 vision tower + 2x2 pixel unshuffle of the N1.6 (Eagle 3) backbone.

Built on transformers' native `Siglip2VisionModel` (its layers, key names and the pooling `head`
the checkpoint holds), but run by our own forward because the reference's semantics differ from
transformers' NaFlex path in three ways that matter numerically:

- patchify: each [3, H, W] image is cut into 14 x 14 patches flattened in (row, column, channel)
  order, i.e. value index (py * 14 + px) * 3 + c, then the Linear(588 -> hidden) patch embedding;
- position embedding: the learned 16 x 16 grid is resized to the patch grid with float32 bilinear
  interpolation, `align_corners=False`, antialias on (F.interpolate, not transformers' weight matrix);
- attention is per image (the reference packs the batch into one flash-attention varlen sequence),
  so images of one size are simply batched without a mask; images of different sizes run apart.

Key layout: `vision_model.vision_model.{embeddings, encoder, post_layernorm, head}`; the pooling
head exists only so checkpoints load strictly: frozen at construction, never run.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import Siglip2VisionConfig
from transformers.models.siglip2.modeling_siglip2 import Siglip2VisionModel

from gr00t_exp.model.siglip import _checkpoint

_VISION_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_channels",
    "patch_size",
    "hidden_act",
    "layer_norm_eps",
    "attention_dropout",
    "num_patches",
)


def siglip2_config(vision_config: dict[str, Any], attn_implementation: str) -> Siglip2VisionConfig:
    cfg = Siglip2VisionConfig(**{k: vision_config[k] for k in _VISION_KEYS if k in vision_config})
    cfg.vision_use_head = True  # built for the checkpoint's `head.*`; never run
    cfg._attn_implementation = attn_implementation
    return cfg


def patchify(pixel_values: Tensor, patch: int) -> Tensor:
    """(N, C, H, W) -> (N, (H/p) * (W/p), p * p * C), patches row-major, values (py, px, c)."""
    n, c, h, w = pixel_values.shape
    if h % patch or w % patch:
        raise ValueError(f"pixel_values {h}x{w} are not a multiple of the {patch}-pixel patch size")
    x = pixel_values.reshape(n, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(n, (h // patch) * (w // patch), patch * patch * c)


def pixel_unshuffle(x: Tensor, rows: int, cols: int, factor: int) -> Tensor:
    """(N, rows*cols, C) tokens -> (N, rows/f * cols/f, C*f*f): channel c*f*f + dy*f + dx, row-major."""
    n, _, c = x.shape
    x = x.reshape(n, rows // factor, factor, cols // factor, factor, c)
    x = x.permute(0, 1, 3, 5, 2, 4)  # (N, rows/f, cols/f, C, dy, dx)
    return x.reshape(n, (rows // factor) * (cols // factor), c * factor * factor)


class Siglip2Tower(nn.Module):
    """`vision_model`: pixels (N, 3, H, W) -> post_layernorm output (N, patches, hidden)."""

    UNUSED_PREFIX = "vision_model.head."

    def __init__(self, vision_config: dict[str, Any], attn_implementation: str) -> None:
        super().__init__()
        cfg = siglip2_config(vision_config, attn_implementation)
        self.patch_size = int(cfg.patch_size)
        self.grid = int(round(cfg.num_patches**0.5))
        self.vision_model = Siglip2VisionModel(cfg)
        self.vision_model.head.requires_grad_(False)

    def position_embeddings(self, rows: int, cols: int, dtype: torch.dtype) -> Tensor:
        table = self.vision_model.embeddings.position_embedding.weight
        grid = table.reshape(self.grid, self.grid, -1).permute(2, 0, 1)[None].float()
        if (rows, cols) != (self.grid, self.grid):
            grid = F.interpolate(
                grid, size=(rows, cols), mode="bilinear", align_corners=False, antialias=True
            )
        return grid[0].reshape(grid.shape[1], rows * cols).t().to(dtype)

    def forward(self, pixel_values: Tensor) -> Tensor:
        """Same-size images (N, 3, H, W) -> (N, (H/14) * (W/14), hidden), each image on its own."""
        vm = self.vision_model
        weight = vm.embeddings.patch_embedding.weight
        rows, cols = pixel_values.shape[-2] // self.patch_size, pixel_values.shape[-1] // self.patch_size
        x = vm.embeddings.patch_embedding(patchify(pixel_values.to(weight.dtype), self.patch_size))
        x = x + self.position_embeddings(rows, cols, x.dtype)
        for layer in vm.encoder.layers:
            x = layer(x, None)
        return vm.post_layernorm(x)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        for layer in self.vision_model.encoder.layers:
            layer.gradient_checkpointing = enabled
            if enabled:
                layer._gradient_checkpointing_func = _checkpoint


def same_size_groups(pixel_values: Tensor | list[Tensor]) -> list[Tensor]:
    """A (N, 3, H, W) tensor, or the processor's list of (1, 3, H_i, W_i) tensors, as consecutive
    same-size batches in input order (attention is per image either way)."""
    if isinstance(pixel_values, Tensor):
        return [pixel_values]
    runs: list[list[Tensor]] = []
    for img in pixel_values:
        img = img if img.dim() == 4 else img[None]
        if runs and runs[-1][0].shape[-2:] == img.shape[-2:]:
            runs[-1].append(img)
        else:
            runs.append([img])
    return [torch.cat(r) if len(r) > 1 else r[0] for r in runs]
