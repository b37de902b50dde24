"""SigLIP vision tower of the Eagle 2.5 backbone, on transformers' native `SiglipVisionModel`.

Key layout matches the checkpoint: `vision_model.vision_model.{embeddings, encoder, post_layernorm,
head}`. The attention-pooling `head` exists only so checkpoints load and save strictly; it is never
run (the model is built with `vision_use_head=False`, the head is attached afterwards, and our
forward stops at `post_layernorm`), and its parameters are frozen at construction.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from transformers import SiglipVisionConfig
from transformers.models.siglip.modeling_siglip import (
    SiglipMultiheadAttentionPoolingHead,
    SiglipVisionModel,
)

# Keys of the Eagle `vision_config` that SiglipVisionConfig understands.
_VISION_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_channels",
    "image_size",
    "patch_size",
    "hidden_act",
    "layer_norm_eps",
    "attention_dropout",
)


def siglip_config(vision_config: dict[str, Any], attn_implementation: str) -> SiglipVisionConfig:
    cfg = SiglipVisionConfig(**{k: vision_config[k] for k in _VISION_KEYS if k in vision_config})
    cfg.vision_use_head = False
    cfg._attn_implementation = attn_implementation
    return cfg


class SiglipTower(nn.Module):
    """`vision_model` of Eagle: pixels (N, 3, H, W) -> last_hidden_state (N, patches, C)."""

    UNUSED_PREFIX = "vision_model.head."

    def __init__(self, vision_config: dict[str, Any], attn_implementation: str) -> None:
        super().__init__()
        cfg = siglip_config(vision_config, attn_implementation)
        self.vision_model = SiglipVisionModel(cfg)
        # Checkpoint compatibility only: the reference builds (and wastes time running) this head.
        self.vision_model.head = SiglipMultiheadAttentionPoolingHead(cfg)
        self.vision_model.head.requires_grad_(False)

    @property
    def config(self) -> SiglipVisionConfig:
        return self.vision_model.config

    def forward(self, pixel_values: Tensor) -> Tensor:
        vm = self.vision_model
        x = vm.embeddings(pixel_values.to(vm.embeddings.patch_embedding.weight.dtype))
        for layer in vm.encoder.layers:
            x = layer(x, None)
        return vm.post_layernorm(x)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        for layer in self.vision_model.encoder.layers:
            layer.gradient_checkpointing = enabled
            if enabled:
                layer._gradient_checkpointing_func = _checkpoint


def _checkpoint(fn, *args, **kwargs):
    return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False, **kwargs)
