"""GR00T N1.5: Eagle 2.5 VL backbone + flow-matching action head.

Batch keys (see docs/interfaces.md): eagle_input_ids (B, L), eagle_attention_mask (B, L),
eagle_pixel_values (N_img, 3, 224, 224), state (B, 1, 64), embodiment_id (B,), and for training
action (B, H, 32), action_mask (B, H, 32). Other keys are ignored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gr00t_exp.model.action_head import FlowMatchingActionHead
from gr00t_exp.model.backbone import EagleBackbone
from gr00t_exp.model.config import Gr00tN15Config
from gr00t_exp.model.embodiment_mlp import batch_embodiment


class Gr00tN15(nn.Module):
    # Parameters that exist only for checkpoint compatibility and never receive gradients
    # (the SigLIP pooling head): tuning code must keep them frozen (DDP would otherwise complain).
    unused_parameter_prefixes = ("backbone.eagle_model.vision_model.vision_model.head.",)

    def __init__(self, config: Gr00tN15Config) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = EagleBackbone(config)
        self.action_head = FlowMatchingActionHead(config.action_head_cfg)
        # experiment_cfg/metadata.json of the checkpoint this model came from (normalisation stats).
        self.metadata: dict[str, Any] | None = None

    # ---- properties ----------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.action_head.dtype

    @property
    def device(self) -> torch.device:
        return self.action_head.future_tokens.weight.device

    @property
    def zero_padded_rows(self) -> bool:
        return self.backbone.zero_padded_rows

    @zero_padded_rows.setter
    def zero_padded_rows(self, value: bool) -> None:
        self.backbone.zero_padded_rows = bool(value)
        self.config.zero_padded_rows = bool(value)

    # ---- API -----------------------------------------------------------------------------
    def forward(
        self, batch: dict[str, Tensor], noise: Tensor | None = None, t: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Flow-matching training loss.

        :param noise: (B, H, A) Gaussian noise; drawn with torch.randn when None.
        :param t: (B,) flow times in (0, 1] (1 = clean action); drawn as (s - u)/s, u ~ Beta(1.5, 1) when None.
        :return: {"loss", "pred_velocity" (B, H, A), "t", "timesteps", "backbone_features", "vl_embs"}.
        """
        bb = self.backbone(batch)
        out = self.action_head(
            bb["backbone_features"],
            batch["state"],
            batch["action"],
            batch_embodiment(batch),
            batch.get("action_mask"),
            noise=noise,
            t=t,
        )
        out["backbone_features"] = bb["backbone_features"]
        return out

    @torch.no_grad()
    def get_action(
        self, batch: dict[str, Tensor], init_noise: Tensor | None = None, num_steps: int | None = None
    ) -> dict[str, Tensor]:
        """Euler-integrate the flow from noise: {"action_pred": (B, H, A)} (+ "backbone_features").

        :param init_noise: (B, H, A) initial actions at t = 0; torch.randn when None.
        :param num_steps: denoising steps (default action_head_cfg.num_inference_timesteps = 4).
        """
        bb = self.backbone(batch)
        head = self.action_head
        emb_id = batch["embodiment_id"]
        ctx = head.prepare(bb["backbone_features"], batch["state"], emb_id)
        if init_noise is None:
            cfg = head.config
            b = batch["state"].shape[0]
            init_noise = torch.randn(
                b, cfg.action_horizon, cfg.action_dim, device=self.device, dtype=head.dtype
            )
        action, velocities = head.sample(ctx, emb_id, init_noise, num_steps)
        return {
            "action_pred": action,
            "backbone_features": bb["backbone_features"],
            "vl_embs": ctx.vl_embs,
            "velocities": velocities,
        }

    # ---- training helpers ------------------------------------------------------------------
    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute activations in backward for SigLIP, Qwen3, VL self-attention and DiT blocks."""
        em = self.backbone.eagle_model
        em.vision_model.set_gradient_checkpointing(enabled)
        em.language_model.set_gradient_checkpointing(enabled)
        self.action_head.vl_self_attention.gradient_checkpointing = enabled
        self.action_head.model.gradient_checkpointing = enabled

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)
