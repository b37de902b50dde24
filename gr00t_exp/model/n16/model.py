"""GR00T N1.6: Eagle 3 VL backbone + AlternateVLDiT flow-matching action head.

Same interface as `Gr00tN15` (forward -> loss dict, get_action, set_gradient_checkpointing,
metadata), so training, evaluation, serving and export take either. Batch keys: `eagle_input_ids`
(B, L), `eagle_attention_mask` (B, L), `eagle_pixel_values` ((N, 3, H, W) or the processor's list of
(1, 3, H, W)), `state` (B, 1, 128), `embodiment_id` (B,), and for the loss `action` (B, 50, 128),
`action_mask`; the reference's names without the `eagle_` prefix are accepted too.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gr00t_exp.model.embodiment_mlp import batch_embodiment
from gr00t_exp.model.n16.action_head import N16ActionHead
from gr00t_exp.model.n16.backbone import EagleN16Backbone
from gr00t_exp.model.n16.config import Gr00tN16Config


class Gr00tN16(nn.Module):
    # Parameters that exist only for checkpoint compatibility and never receive gradients.
    unused_parameter_prefixes = ("backbone.model.vision_model.vision_model.head.",)
    family = "gr00t_n16"

    def __init__(self, config: Gr00tN16Config) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = EagleN16Backbone(config)
        self.action_head = N16ActionHead(config)
        # The checkpoint's processor files (processor_config.json, statistics.json,
        # embodiment_id.json) as dicts, keyed by file name; written back by save_pretrained.
        self.metadata: dict[str, Any] | None = None

    # ---- properties ----------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.action_head.dtype

    @property
    def device(self) -> torch.device:
        return self.action_head.action_encoder.W1.W.device

    @property
    def zero_padded_rows(self) -> bool:
        return self.backbone.zero_padded_rows

    @zero_padded_rows.setter
    def zero_padded_rows(self, value: bool) -> None:
        self.backbone.zero_padded_rows = bool(value)
        self.config.zero_padded_rows = bool(value)

    def tie_weights(self) -> None:
        self.backbone.model.language_model.tie_lm_head()

    # ---- API -----------------------------------------------------------------------------
    def forward(
        self,
        batch: dict[str, Tensor],
        noise: Tensor | None = None,
        t: Tensor | None = None,
        state_dropout_uniform: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Flow-matching training loss.

        :param noise: (B, H, A) Gaussian noise; torch.randn when None.
        :param t: (B,) flow times in [0, 1) (1 = clean); (1 - u) * 0.999, u ~ Beta(1.5, 1) when None.
        :param state_dropout_uniform: (B,) uniforms of the state dropout (torch.rand when None).
        :return: {"loss", "pred_velocity", "action_loss", "t", "timesteps", "backbone_features",
            "vl_embs", "state_features", "action_features", "dit_output"}.
        """
        bb = self.backbone(batch)
        out = self.action_head(
            bb["backbone_features"],
            bb["backbone_attention_mask"],
            bb["image_mask"],
            batch["state"],
            batch["action"],
            batch_embodiment(batch),
            batch.get("action_mask"),
            noise=noise,
            t=t,
            state_dropout_uniform=state_dropout_uniform,
        )
        out["backbone_features"] = bb["backbone_features"]
        return out

    @torch.no_grad()
    def get_action(
        self, batch: dict[str, Tensor], init_noise: Tensor | None = None, num_steps: int | None = None
    ) -> dict[str, Tensor]:
        """Euler-integrate the flow from noise over the whole (action_horizon, max_action_dim)
        chunk: {"action_pred", "backbone_features", "vl_embs", "velocities", "dit_outputs"}; the
        embodiment's real steps / dims are taken by the caller."""
        bb = self.backbone(batch)
        head = self.action_head
        emb_id = batch["embodiment_id"]
        ctx = head.prepare(
            bb["backbone_features"], bb["backbone_attention_mask"], bb["image_mask"], batch["state"], emb_id
        )
        if init_noise is None:
            cfg = self.config
            b = batch["state"].shape[0]
            init_noise = torch.randn(
                b, cfg.action_horizon, cfg.max_action_dim, device=self.device, dtype=head.dtype
            )
        action, velocities, dit_outputs = head.sample(ctx, emb_id, init_noise, num_steps)
        return {
            "action_pred": action,
            "backbone_features": bb["backbone_features"],
            "vl_embs": ctx.vl_embs,
            "state_features": ctx.state_features,
            "velocities": velocities,
            "dit_outputs": dit_outputs,
        }

    # ---- training helpers ------------------------------------------------------------------
    def tuning_layout(self):
        """Where the tune_* flags act (gr00t_exp/model/tuning.py). With tune_llm false the top
        `tune_top_llm_layers` kept LLM layers still train (the checkpoint's value, 4 in the
        released model, as the reference); `tune_vlln` false freezes `action_head.vlln`."""
        from gr00t_exp.model.tuning import TuningLayout

        cfg = self.config
        llm = "backbone.model.language_model"
        n = cfg.select_layer
        top = tuple(f"{llm}.model.layers.{i}" for i in range(n - cfg.tune_top_llm_layers, n))
        projectors = tuple(
            f"action_head.{m}"
            for m in ("state_encoder", "action_encoder", "action_decoder", "position_embedding", "mask_token")
        )
        return TuningLayout(
            vision="backbone.model.vision_model",
            connector="backbone.model.mlp1",
            llm=llm,
            dit="action_head.model",
            projectors=projectors,
            lora_targets={
                "action_head": ("action_head.model",),
                "dit": ("action_head.model",),
                "llm": (llm,),
                "visual": ("backbone.model.vision_model",),
                "full": ("",),
            },
            summary_modules=(
                "backbone.model.vision_model",
                "backbone.model.mlp1",
                llm,
                "action_head.vlln",
                "action_head.model",
                *projectors,
            ),
            extra_frozen=() if cfg.tune_vlln else ("action_head.vlln",),
            kept_trainable=top,
        )

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute activations in backward for SigLIP-2, Qwen3 and DiT blocks."""
        em = self.backbone.model
        em.vision_model.set_gradient_checkpointing(enabled)
        em.language_model.set_gradient_checkpointing(enabled)
        self.action_head.model.gradient_checkpointing = enabled

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)
