"""Eagle 2.5 VL backbone as GR00T N1.5 uses it.

SigLIP tower -> `mlp1` (one Linear, no pixel shuffle) -> image features replace the
`<IMG_CONTEXT>` token embeddings -> Qwen3 truncated to its first `select_layer` layers (the rest
are never built) -> final RMSNorm. The features are that normed output (what HF returns as
`hidden_states[select_layer]`); LLM logits are never computed (no lm_head is built).

Key layout: `backbone.eagle_model.{vision_model.vision_model.*, mlp1.0.*, language_model.model.*}`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from transformers import Qwen3Config
from transformers.models.qwen3.modeling_qwen3 import Qwen3Model

from gr00t_exp.model.attention import build_llm_mask, llm_attn_impl
from gr00t_exp.model.config import Gr00tN15Config
from gr00t_exp.model.siglip import SiglipTower, _checkpoint

_TEXT_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "attention_bias",
    "attention_dropout",
    "initializer_range",
    "bos_token_id",
    "eos_token_id",
)


def qwen3_config(text_config: dict[str, Any], num_layers: int, attn_implementation: str) -> Qwen3Config:
    """A Qwen3Config with only `num_layers` layers (GR00T keeps the first `select_layer`)."""
    kw = {k: text_config[k] for k in _TEXT_KEYS if k in text_config}
    if text_config.get("rope_scaling"):
        raise ValueError("eagle_config.json: text_config.rope_scaling is not supported (N1.5 uses none)")
    kw["num_hidden_layers"] = num_layers
    kw["tie_word_embeddings"] = False  # no lm_head is built at all
    kw["use_cache"] = False
    cfg = Qwen3Config(**kw)
    cfg._attn_implementation = attn_implementation
    return cfg


class LanguageModel(nn.Module):
    """`language_model` of Eagle: holds `.model` (transformers' Qwen3Model, truncated)."""

    def __init__(self, config: Qwen3Config) -> None:
        super().__init__()
        self.model = Qwen3Model(config)

    def _apply(self, fn, recurse=True):
        # `model.to(bfloat16)` would also cast the RoPE inverse frequencies; keep them float32
        # (transformers computes them in float32 and upcasts before use).
        super()._apply(fn, recurse)
        rope = self.model.rotary_emb
        if rope.inv_freq.dtype != torch.float32 and rope.inv_freq.device.type != "meta":
            inv_freq, _ = rope.compute_default_rope_parameters(rope.config)
            rope.inv_freq = inv_freq.to(rope.inv_freq.device)
            rope.original_inv_freq = rope.inv_freq.clone()
        return self

    def embed(self, input_ids: Tensor) -> Tensor:
        return self.model.embed_tokens(input_ids)

    def forward(self, inputs_embeds: Tensor, attention_mask: Tensor | None, zero_padded_rows: bool) -> Tensor:
        """Run the kept layers + final norm. attention_mask (B, L) 0/1 (left padding) or None."""
        lm = self.model
        b, n, _ = inputs_embeds.shape
        position_ids = torch.arange(n, device=inputs_embeds.device)[None].expand(b, -1)
        mask = None
        row_mask = None
        if attention_mask is not None and not _all_ones(attention_mask):
            mask = build_llm_mask(attention_mask)
            row_mask = attention_mask
        pos = lm.rotary_emb(inputs_embeds, position_ids)
        h = inputs_embeds
        for layer in lm.layers:
            # Layers may differ in dtype (N1.6 as released: bf16 layers, fp32 top layers); a no-op
            # when they all share one dtype (N1.5).
            h = h.to(layer.input_layernorm.weight.dtype)
            h = layer(
                h,
                attention_mask=mask,
                position_embeddings=pos,
                position_ids=position_ids,
                query_row_mask=row_mask,
                padded_rows="zero" if zero_padded_rows else "uniform",
            )
        return lm.norm(h.to(lm.norm.weight.dtype))

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        for layer in self.model.layers:
            layer.gradient_checkpointing = enabled
            if enabled:
                layer._gradient_checkpointing_func = _checkpoint


def _capturing() -> bool:
    """Inside a CUDA-graph capture (model/inference.py), where a host sync would break it."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def _all_ones(mask: Tensor) -> bool:
    # One host sync per batch (outside the denoising loop); lets unpadded batches use the causal
    # flash kernel without a materialised mask. Under torch.compile or a CUDA-graph capture (no
    # host sync allowed) always take the masked path: the same result for an unpadded batch.
    if torch.compiler.is_compiling() or _capturing():
        return False
    return bool(mask.all())


def scatter_image_features(
    emb: Tensor, input_ids: Tensor, vit_embeds: Tensor, image_token_index: int, layout: str
) -> Tensor:
    """`emb` (B, L, D) with the `<IMG_CONTEXT>` rows replaced, in order, by the image feature rows
    (`vit_embeds` (..., D), flattened; images in order). `layout` describes them in the error.

    Static-shape gather (no boolean indexing): position p takes image row cumsum(is_img)[p] - 1.
    """
    is_img = input_ids == image_token_index
    flat = vit_embeds.reshape(-1, vit_embeds.shape[-1]).to(emb.dtype)
    if not (torch.compiler.is_compiling() or _capturing()):
        n_tok, n_feat = int(is_img.sum()), flat.shape[0]
        if n_tok != n_feat:
            raise ValueError(
                f"eagle_input_ids hold {n_tok} <IMG_CONTEXT> tokens (id {image_token_index}) but "
                f"eagle_pixel_values give {n_feat} image feature rows ({layout}): the processor output and "
                "the images do not match"
            )
    idx = (is_img.reshape(-1).long().cumsum(0) - 1).clamp_min(0).view_as(input_ids)
    return torch.where(is_img[..., None], flat[idx], emb)


class EagleModel(nn.Module):
    def __init__(self, cfg: Gr00tN15Config) -> None:
        super().__init__()
        impl = llm_attn_impl(cfg.attn_implementation)
        self.image_token_index = cfg.image_token_index
        self.vision_model = SiglipTower(cfg.vision_config, impl)
        vit_dim = int(cfg.vision_config["hidden_size"])
        llm_dim = int(cfg.text_config["hidden_size"])
        self.mlp1 = nn.Sequential(nn.Linear(vit_dim, llm_dim))
        self.language_model = LanguageModel(
            qwen3_config(cfg.text_config, cfg.backbone_cfg.select_layer, impl)
        )

    def image_features(self, pixel_values: Tensor) -> Tensor:
        """(N_img, 3, 224, 224) -> (N_img, 256, llm_dim): SigLIP last_hidden_state then mlp1."""
        return self.mlp1(self.vision_model(pixel_values))

    def input_embeddings(self, input_ids: Tensor, vit_embeds: Tensor) -> Tensor:
        """Token embeddings with the `<IMG_CONTEXT>` rows replaced, in order, by the image features."""
        emb = self.language_model.embed(input_ids)
        return scatter_image_features(
            emb,
            input_ids,
            vit_embeds,
            self.image_token_index,
            f"{vit_embeds.shape[0]} images x {vit_embeds.shape[1]}",
        )

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None, pixel_values: Tensor, zero_padded_rows: bool
    ) -> dict[str, Tensor]:
        vit = self.image_features(pixel_values)
        embeds = self.input_embeddings(input_ids, vit)
        features = self.language_model(embeds, attention_mask, zero_padded_rows)
        return {"vit_embeds": vit, "llm_inputs_embeds": embeds, "features": features}


class EagleBackbone(nn.Module):
    """`backbone`: eagle_model + eagle_linear (Identity unless backbone_cfg.project_to_dim)."""

    def __init__(self, cfg: Gr00tN15Config) -> None:
        super().__init__()
        self.zero_padded_rows = cfg.zero_padded_rows
        self.eagle_model = EagleModel(cfg)
        p = cfg.backbone_cfg.project_to_dim
        llm_dim = int(cfg.text_config["hidden_size"])
        self.eagle_linear = nn.Linear(llm_dim, int(p)) if p else nn.Identity()

    def forward(self, batch: dict[str, Tensor], return_intermediates: bool = False) -> dict[str, Tensor]:
        """Batch with eagle_input_ids / eagle_attention_mask / eagle_pixel_values ->
        backbone_features (B, L, D) and backbone_attention_mask (B, L)."""
        mask = batch.get("eagle_attention_mask")
        out = self.eagle_model(
            batch["eagle_input_ids"], mask, batch["eagle_pixel_values"], self.zero_padded_rows
        )
        res = {
            "backbone_features": self.eagle_linear(out["features"]),
            "backbone_attention_mask": mask,
        }
        if return_intermediates:
            res["vit_embeds"] = out["vit_embeds"]
            res["llm_inputs_embeds"] = out["llm_inputs_embeds"]
        return res
