"""N1.6 flow-matching action head (`action_head.*`).

Same rectified-flow convention as N1.5 (t = 1 is data, x_t = (1 - t) noise + t action, target
action - noise, bucket floor(t * 1000)) and the same building blocks (the DiT of model/dit.py, the
per-embodiment layers of model/embodiment_mlp.py), with N1.6's differences:

- tokens into the DiT: [state (1), action tokens (horizon)]: no future tokens, no VL self-attention;
  the VL tokens only go through `vlln` (per-token LayerNorm);
- AlternateVLDiT: even blocks cross-attend with a key mask: blocks idx % (2n) == 0 see the text
  (non-image, non-padding) tokens, the other even blocks only the `<IMG_CONTEXT>` tokens
  (n = attend_text_every_n_blocks); padding is never attended, so it never reaches the actions;
- training time t = (1 - u) * noise_s, u ~ Beta(1.5, 1); loss denominator sum(mask) + 1e-6;
- state dropout (state_dropout_prob > 0): the training forward replaces a sample's state token by
  the learned `mask_token` where a uniform draw is < p; like the reference this is not gated by
  `training` (it also runs in an eval-mode loss pass) but never runs in `get_action`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gr00t_exp.model.action_head import euler_timesteps
from gr00t_exp.model.dit import KV, DiT
from gr00t_exp.model.embodiment_mlp import CategorySpecificMLP, MultiEmbodimentActionEncoder
from gr00t_exp.model.n16.config import Gr00tN16Config


@dataclass
class N16Context:
    """What the denoising steps need from the VL tokens and the state, computed once per batch."""

    vl_embs: Tensor  # (B, L, D) after vlln
    cross_kv: list[KV | None]
    cross_masks: list[Tensor | None]  # per DiT block: (B, 1, 1, L) bool or None (self-attention)
    state_features: Tensor  # (B, 1, input_embedding_dim)


def alternate_masks(
    num_blocks: int, every_n: int, image_mask: Tensor, attention_mask: Tensor
) -> list[Tensor | None]:
    """Per block: text-only / image-only / no key mask (odd blocks self-attend)."""
    real = attention_mask.bool()
    image = (image_mask.bool() & real)[:, None, None, :]
    text = (~image_mask.bool() & real)[:, None, None, :]
    out: list[Tensor | None] = []
    for i in range(num_blocks):
        if i % 2 == 1:
            out.append(None)
        else:
            out.append(text if i % (2 * every_n) == 0 else image)
    return out


class N16ActionHead(nn.Module):
    def __init__(self, cfg: Gr00tN16Config) -> None:
        super().__init__()
        self.config = cfg
        d = cfg.input_embedding_dim
        dit = cfg.diffusion_model_cfg
        e = cfg.max_num_embodiments
        self.model = DiT(
            num_attention_heads=dit.num_attention_heads,
            attention_head_dim=dit.attention_head_dim,
            num_layers=dit.num_layers,
            cross_attention_dim=cfg.backbone_embedding_dim,
            output_dim=dit.output_dim,
            dropout=dit.dropout,
            final_dropout=dit.final_dropout,
            interleave_self_attention=dit.interleave_self_attention,
        )
        # Sinusoid frequencies rounded correctly (not CPU-dependent): at bucket 750 a one-ulp
        # frequency moves the step-3 velocity by 1e-5; with them every Euler step matches to 3e-6.
        self.model.timestep_encoder.exact_frequencies = True
        self.state_encoder = CategorySpecificMLP(e, cfg.max_state_dim, cfg.hidden_size, d)
        self.action_encoder = MultiEmbodimentActionEncoder(cfg.max_action_dim, d, e)
        self.action_encoder.exact_frequencies = True
        self.action_decoder = CategorySpecificMLP(e, dit.output_dim, cfg.hidden_size, cfg.max_action_dim)
        self.vlln = nn.LayerNorm(cfg.backbone_embedding_dim) if cfg.use_vlln else nn.Identity()
        if cfg.add_pos_embed:
            self.position_embedding = nn.Embedding(cfg.max_seq_len, d)
            nn.init.normal_(self.position_embedding.weight, std=0.02)
        else:
            self.position_embedding = None
        if cfg.state_dropout_prob > 0:
            self.mask_token = nn.Parameter(0.02 * torch.randn(1, 1, d))
        else:
            self.mask_token = None

    @property
    def dtype(self) -> torch.dtype:
        return self.action_encoder.W1.W.dtype

    # ---- pieces ------------------------------------------------------------------------
    def prepare(
        self,
        backbone_features: Tensor,
        attention_mask: Tensor,
        image_mask: Tensor,
        state: Tensor,
        embodiment_id: Tensor | int,
    ) -> N16Context:
        vl_embs = self.vlln(backbone_features.to(self.dtype))
        masks = alternate_masks(
            len(self.model.transformer_blocks),
            self.config.attend_text_every_n_blocks,
            image_mask,
            attention_mask,
        )
        return N16Context(
            vl_embs=vl_embs,
            cross_kv=self.model.cross_kv(vl_embs),
            cross_masks=masks,
            state_features=self.state_encoder(state.to(self.dtype), embodiment_id),
        )

    def velocity(
        self,
        ctx: N16Context,
        state_features: Tensor,
        actions: Tensor,
        timesteps: Tensor,
        embodiment_id: Tensor | int,
        time_features: Tensor | None = None,
        modulation: list[Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(velocity (B, H, A), DiT output (B, 1 + H, output_dim), action tokens before the
        position embedding (B, H, D)) at noisy `actions` and integer `timesteps` (B,)."""
        horizon = actions.shape[1]
        action_features = self.action_encoder(actions, timesteps, embodiment_id, time_features)
        tokens = action_features
        if self.position_embedding is not None:
            tokens = tokens + self.position_embedding.weight[:horizon][None]
        x = torch.cat([state_features, tokens], dim=1)
        out = self.model(x, timesteps, ctx.cross_kv, modulation=modulation, cross_masks=ctx.cross_masks)
        # The decoder is per token: decoding only the last `horizon` rows equals decoding all 1 + H.
        return self.action_decoder(out[:, -horizon:], embodiment_id), out, action_features

    # ---- training ----------------------------------------------------------------------
    def time_from_beta(self, u: Tensor) -> Tensor:
        """t = (1 - u) * noise_s (N1.5: (noise_s - u) / noise_s)."""
        return (1 - u) * self.config.noise_s

    def sample_time(self, batch_size: int, device: torch.device) -> Tensor:
        cfg = self.config
        dist = torch.distributions.Beta(
            torch.tensor(cfg.noise_beta_alpha, device=device),
            torch.tensor(cfg.noise_beta_beta, device=device),
        )
        return self.time_from_beta(dist.sample((batch_size,)))

    def drop_state(self, state_features: Tensor, uniform: Tensor | None) -> Tensor:
        """State dropout of the training forward (not gated by `training`, as the reference)."""
        p = self.config.state_dropout_prob
        if p <= 0 or self.mask_token is None:
            return state_features
        if uniform is None:
            uniform = torch.rand(state_features.shape[0], device=state_features.device)
        drop = (uniform.to(state_features.device) < p)[:, None, None]
        return torch.where(drop, self.mask_token.to(state_features.dtype), state_features)

    def forward(
        self,
        backbone_features: Tensor,
        attention_mask: Tensor,
        image_mask: Tensor,
        state: Tensor,
        action: Tensor,
        embodiment_id: Tensor | int,
        action_mask: Tensor | None = None,
        noise: Tensor | None = None,
        t: Tensor | None = None,
        state_dropout_uniform: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Flow-matching loss; `noise` (B, H, A), `t` (B,) and the state-dropout uniforms (B,) are
        drawn when not given."""
        action = action.to(self.dtype)
        b = action.shape[0]
        noise = torch.randn_like(action) if noise is None else noise.to(action.device, action.dtype)
        t = self.sample_time(b, action.device) if t is None else t.to(action.device, torch.float32)
        tt = t.to(action.dtype)[:, None, None]
        noisy = (1 - tt) * noise + tt * action
        target = action - noise
        buckets = (t * self.config.num_timestep_buckets).long()
        ctx = self.prepare(backbone_features, attention_mask, image_mask, state, embodiment_id)
        state_features = self.drop_state(ctx.state_features, state_dropout_uniform)
        cfg = self.config
        if self.training and cfg.state_additive_noise_scale > 0:
            state_features = state_features + cfg.state_additive_noise_scale * torch.randn_like(
                state_features
            )
        pred, dit_out, action_features = self.velocity(ctx, state_features, noisy, buckets, embodiment_id)
        sq = (pred.float() - target.float()) ** 2
        m = torch.ones_like(sq) if action_mask is None else action_mask.to(sq.device, sq.dtype)
        per_elem = sq * m
        loss = per_elem.sum() / (m.sum() + 1e-6)
        return {
            "loss": loss,
            "pred_velocity": pred,
            "action_loss": per_elem,
            "t": t,
            "timesteps": buckets,
            "vl_embs": ctx.vl_embs,
            "state_features": state_features,
            "action_features": action_features,
            "dit_output": dit_out,
        }

    # ---- inference ---------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, ctx: N16Context, embodiment_id: Tensor | int, init_noise: Tensor, num_steps: int | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Euler from t = 0 (noise) to 1 in `num_steps` steps at buckets int(k / n * 1000):
        (actions, velocities per step, DiT outputs per step). Timestep-only tensors of all steps
        (AdaLN modulations, action-encoder sinusoids) are computed up front."""
        n = int(num_steps or self.config.num_inference_timesteps)
        x = init_noise.to(self.dtype)
        b, horizon = x.shape[:2]
        dt = 1.0 / n
        all_t = euler_timesteps(n, self.config.num_timestep_buckets, b, x.device)
        all_mods = [m.view(n, b, -1) for m in self.model.time_modulation(all_t)]
        all_tau = self.action_encoder.time_features(all_t, horizon, x.dtype).view(n, b, horizon, -1)
        velocities, dit_outputs = [], []
        for k in range(n):
            v, out, _ = self.velocity(
                ctx,
                ctx.state_features,
                x,
                all_t[k * b : (k + 1) * b],
                embodiment_id,
                all_tau[k],
                [m[k] for m in all_mods],
            )
            velocities.append(v)
            dit_outputs.append(out)
            x = x + dt * v
        return x, velocities, dit_outputs
