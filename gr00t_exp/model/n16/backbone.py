"""Eagle 3 VL backbone as GR00T N1.6 uses it (`backbone.model.*`).

SigLIP-2 tower (per image) -> 2x2 pixel unshuffle -> `mlp1` = LayerNorm, Linear, GELU (erf),
Linear -> image features replace the `<IMG_CONTEXT>` token embeddings -> Qwen3 truncated to its
first `select_layer` layers -> final RMSNorm. The features are that normed output. The Qwen3 pieces
(truncated transformers `Qwen3Model`, padding-aware SDPA, image-row scatter) are N1.5's.

`language_model.lm_head` exists only because the checkpoint layout has it: it is tied to
`embed_tokens` (GR00T never computes logits), so it costs no memory; `save_pretrained` drops it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gr00t_exp.model.attention import llm_attn_impl
from gr00t_exp.model.backbone import LanguageModel, qwen3_config, scatter_image_features
from gr00t_exp.model.n16.config import Gr00tN16Config
from gr00t_exp.model.n16.vision import Siglip2Tower, pixel_unshuffle, same_size_groups


class N16LanguageModel(LanguageModel):
    """`language_model`: `.model` (truncated Qwen3Model) + `.lm_head` tied to the token embeddings."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_lm_head()

    def tie_lm_head(self) -> None:
        """(Re)tie after the embedding parameter was replaced (loading with assign=True)."""
        self.lm_head.weight = self.model.embed_tokens.weight


class EagleN16Model(nn.Module):
    def __init__(self, cfg: Gr00tN16Config) -> None:
        super().__init__()
        impl = llm_attn_impl(cfg.attn_implementation)
        self.image_token_index = cfg.image_token_index
        self.factor = cfg.unshuffle_factor
        self.vision_model = Siglip2Tower(cfg.vision_config, impl)
        vit_dim = int(cfg.vision_config["hidden_size"]) * self.factor**2
        llm_dim = int(cfg.text_config["hidden_size"])
        self.mlp1 = nn.Sequential(
            nn.LayerNorm(vit_dim), nn.Linear(vit_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim)
        )
        self.language_model = N16LanguageModel(qwen3_config(cfg.text_config, cfg.select_layer, impl))

    def image_features(self, pixel_values: Tensor | list[Tensor]) -> dict[str, list[Tensor]]:
        """Per same-size image group: tower output, unshuffled tokens and connector output."""
        patch = self.vision_model.patch_size
        out: dict[str, list[Tensor]] = {
            "vision_last_hidden_state": [],
            "pixel_shuffle_out": [],
            "vit_embeds": [],
        }
        for group in same_size_groups(pixel_values):
            hidden = self.vision_model(group)
            x = pixel_unshuffle(hidden, group.shape[-2] // patch, group.shape[-1] // patch, self.factor)
            out["vision_last_hidden_state"].append(hidden)
            out["pixel_shuffle_out"].append(x)
            out["vit_embeds"].append(self.mlp1(x))
        return out

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None,
        pixel_values: Tensor | list[Tensor],
        zero_padded_rows: bool,
    ) -> dict[str, Tensor | list[Tensor]]:
        feats = self.image_features(pixel_values)
        emb = self.language_model.embed(input_ids)
        vit = torch.cat([v.reshape(-1, v.shape[-1]) for v in feats["vit_embeds"]])
        n_img = sum(v.shape[0] for v in feats["vit_embeds"])
        embeds = scatter_image_features(emb, input_ids, vit, self.image_token_index, f"{n_img} images")
        features = self.language_model(embeds, attention_mask, zero_padded_rows)
        return {**feats, "llm_inputs_embeds": embeds, "features": features}


class EagleN16Backbone(nn.Module):
    """`backbone`: `.model` (Eagle 3). Returns features, the boolean padding mask and the image mask."""

    def __init__(self, cfg: Gr00tN16Config) -> None:
        super().__init__()
        self.zero_padded_rows = cfg.zero_padded_rows
        self.model = EagleN16Model(cfg)

    def forward(self, batch: dict, return_intermediates: bool = False) -> dict[str, Tensor]:
        """Batch with (eagle_)input_ids, (eagle_)attention_mask, (eagle_)pixel_values ->
        backbone_features (B, L, D), backbone_attention_mask (B, L) bool, image_mask (B, L) bool."""
        input_ids = batch_get(batch, "input_ids")
        mask = batch_get(batch, "attention_mask", required=False)
        out = self.model(input_ids, mask, batch_get(batch, "pixel_values"), self.zero_padded_rows)
        res = {
            "backbone_features": out["features"],
            "backbone_attention_mask": mask.bool()
            if mask is not None
            else input_ids.new_ones(input_ids.shape).bool(),
            "image_mask": input_ids == self.model.image_token_index,
        }
        if return_intermediates:
            for k in ("vision_last_hidden_state", "pixel_shuffle_out", "vit_embeds"):
                parts = out[k]
                res[k] = parts[0] if len(parts) == 1 else parts
            res["llm_inputs_embeds"] = out["llm_inputs_embeds"]
        return res


def batch_get(batch: dict, name: str, required: bool = True):
    """`eagle_<name>` (the project's batch keys, shared with N1.5) or `<name>` (the reference's)."""
    for key in (f"eagle_{name}", name):
        if key in batch:
            return batch[key]
    if required:
        raise KeyError(f"GR00T N1.6 batch: missing `eagle_{name}` (or `{name}`); got keys {sorted(batch)}")
    return None
