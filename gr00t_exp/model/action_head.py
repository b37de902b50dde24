"""N1.5 flow-matching action head (`action_head.*`).

Conventions (rectified flow, t = 1 is data): x_t = (1 - t) noise + t action, target velocity
action - noise, timestep bucket floor(t * 1000) for both the DiT and the action encoder. Tokens
into the DiT: [state (1), future tokens (32), action tokens (horizon)]; the last `horizon` outputs
are decoded into velocities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gr00t_exp.model.config import ActionHeadConfig
from gr00t_exp.model.derived import DerivedCache
from gr00t_exp.model.dit import KV, DiT, SelfAttentionTransformer
from gr00t_exp.model.embodiment_mlp import (
    CategorySpecificLinear,
    CategorySpecificMLP,
    MultiEmbodimentActionEncoder,
)


@dataclass
class VLContext:
    """What the denoising steps need from the VL features, computed once per batch."""

    vl_embs: Tensor  # (B, L, backbone_dim) after vlln + vl_self_attention
    cross_kv: list[KV | None]  # DiT cross-attention K/V per block
    state_features: Tensor  # (B, 1, D)
    prefix: Tensor  # (B, 1 + num_future_tokens, D): state token then future tokens


def _take(layer: CategorySpecificLinear, ids: Tensor) -> tuple[Tensor, Tensor]:
    """The (bias (B, 1, out), weight (B, in, out)) of each sample's embodiment."""
    return layer.b[ids].unsqueeze(1), layer.W[ids]


class BoundEmbodiment:
    """The per-embodiment layers that run in every denoising step (action encoder, action decoder)
    with each sample's weight slices gathered once per `get_action` instead of once per step and
    layer. Same arithmetic as `MultiEmbodimentActionEncoder` / `CategorySpecificMLP` (baddbmm)."""

    def __init__(self, encoder: MultiEmbodimentActionEncoder, decoder: CategorySpecificMLP, ids: Tensor):
        self.enc = [_take(encoder.W1, ids), _take(encoder.W2, ids), _take(encoder.W3, ids)]
        self.dec = [_take(decoder.layer1, ids), _take(decoder.layer2, ids)]

    def encode(self, actions: Tensor, time_features: Tensor) -> Tensor:
        (b1, w1), (b2, w2), (b3, w3) = self.enc
        a = torch.baddbmm(b1, actions, w1)
        x = F.silu(torch.baddbmm(b2, torch.cat([a, time_features], dim=-1), w2))
        return torch.baddbmm(b3, x, w3)

    def decode(self, x: Tensor) -> Tensor:
        (b1, w1), (b2, w2) = self.dec
        return torch.baddbmm(b2, F.relu(torch.baddbmm(b1, x, w1)), w2)


def euler_timesteps(num_steps: int, num_buckets: int, batch_size: int, device: torch.device) -> Tensor:
    """Integer buckets int(k / n * num_buckets) of the n Euler steps from t = 0, each repeated for the
    batch, step-major: (n * B,). Shared by N1.5 and N1.6 (same schedule, dt = 1 / n)."""
    buckets = [int(k / float(num_steps) * num_buckets) for k in range(num_steps)]
    return torch.cat([torch.full((batch_size,), k, dtype=torch.long, device=device) for k in buckets])


class FlowMatchingActionHead(nn.Module):
    def __init__(self, cfg: ActionHeadConfig) -> None:
        super().__init__()
        self.config = cfg
        d = cfg.input_embedding_dim
        dit = cfg.diffusion_model_cfg
        vl = cfg.vl_self_attention_cfg
        e = cfg.max_num_embodiments
        self.model = DiT(**vars(dit))
        self.action_decoder = CategorySpecificMLP(e, dit.output_dim, cfg.hidden_size, cfg.action_dim)
        self.state_encoder = CategorySpecificMLP(e, cfg.max_state_dim, cfg.hidden_size, d)
        self.action_encoder = MultiEmbodimentActionEncoder(cfg.action_dim, d, e)
        self.future_tokens = nn.Embedding(cfg.num_target_vision_tokens, d)
        nn.init.normal_(self.future_tokens.weight, std=0.02)
        self.vlln = nn.LayerNorm(cfg.backbone_embedding_dim) if cfg.use_vlln else nn.Identity()
        self.vl_self_attention = SelfAttentionTransformer(
            vl.num_attention_heads * vl.attention_head_dim,
            vl.num_attention_heads,
            vl.attention_head_dim,
            vl.num_layers,
            vl.dropout,
            vl.final_dropout,
        )
        if cfg.add_pos_embed:
            self.position_embedding = nn.Embedding(cfg.max_seq_len, d)
            nn.init.normal_(self.position_embedding.weight, std=0.02)
        else:
            self.position_embedding = None
        # Inference: timestep-only tensors of the fixed Euler buckets, per (steps, horizon, ...).
        self._step_cache = DerivedCache()

    @property
    def dtype(self) -> torch.dtype:
        return self.future_tokens.weight.dtype

    # ---- pieces ------------------------------------------------------------------------
    def encode_vl(self, backbone_features: Tensor) -> Tensor:
        """vlln + vl_self_attention over every VL token (N1.5 applies no mask)."""
        return self.vl_self_attention(self.vlln(backbone_features.to(self.dtype)))

    def prepare(self, backbone_features: Tensor, state: Tensor, embodiment_id: Tensor | int) -> VLContext:
        vl_embs = self.encode_vl(backbone_features)
        state_features = self.state_encoder(state.to(self.dtype), embodiment_id)
        future = self.future_tokens.weight[None].expand(state.shape[0], -1, -1)
        return VLContext(
            vl_embs=vl_embs,
            cross_kv=self.model.cross_kv(vl_embs),
            state_features=state_features,
            prefix=torch.cat([state_features, future], dim=1),
        )

    def velocity(
        self,
        ctx: VLContext,
        actions: Tensor,
        timesteps: Tensor,
        embodiment_id: Tensor | int,
        time_features: Tensor | None = None,
        modulation: list[Tensor] | None = None,
        bound: BoundEmbodiment | None = None,
    ) -> Tensor:
        """Predicted velocity (B, horizon, action_dim) at noisy `actions` and integer `timesteps` (B,).

        `time_features` / `modulation`: precomputed timestep-only inputs (see `sample`); `bound`:
        the embodiment weight slices gathered once (with `time_features` given).
        """
        horizon = actions.shape[1]
        if bound is not None and time_features is not None:
            tokens = bound.encode(actions, time_features)
        else:
            tokens = self.action_encoder(actions, timesteps, embodiment_id, time_features)
        if self.position_embedding is not None:
            tokens = tokens + self.position_embedding.weight[:horizon][None]
        x = torch.cat([ctx.prefix, tokens], dim=1)
        out = self.model(x, timesteps, ctx.cross_kv, num_out_tokens=horizon, modulation=modulation)
        return bound.decode(out) if bound is not None else self.action_decoder(out, embodiment_id)

    # ---- training ----------------------------------------------------------------------
    def sample_time(self, batch_size: int, device: torch.device) -> Tensor:
        """t = (noise_s - u) / noise_s, u ~ Beta(alpha, beta): mass near t = 0 (noisy)."""
        cfg = self.config
        dist = torch.distributions.Beta(
            torch.tensor(cfg.noise_beta_alpha, device=device),
            torch.tensor(cfg.noise_beta_beta, device=device),
        )
        u = dist.sample((batch_size,))
        return (cfg.noise_s - u) / cfg.noise_s

    def forward(
        self,
        backbone_features: Tensor,
        state: Tensor,
        action: Tensor,
        embodiment_id: Tensor | int,
        action_mask: Tensor | None = None,
        noise: Tensor | None = None,
        t: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Flow-matching loss. `noise` (B, H, A) and `t` (B,) in (0, 1] are drawn when not given."""
        action = action.to(self.dtype)
        b = action.shape[0]
        if noise is None:
            noise = torch.randn_like(action)
        if t is None:
            t = self.sample_time(b, action.device)
        noise = noise.to(action.dtype)
        t = t.to(action.device, torch.float32)
        tt = t.to(action.dtype)[:, None, None]
        noisy = (1 - tt) * noise + tt * action
        target = action - noise
        buckets = (t * self.config.num_timestep_buckets).long()
        ctx = self.prepare(backbone_features, state, embodiment_id)
        pred = self.velocity(ctx, noisy, buckets, embodiment_id)
        sq = (pred.float() - target.float()) ** 2
        if action_mask is None:
            loss = sq.mean()
        else:
            m = action_mask.to(sq.dtype)
            loss = (sq * m).sum() / m.sum().clamp_min(1.0)
        return {"loss": loss, "pred_velocity": pred, "t": t, "timesteps": buckets, "vl_embs": ctx.vl_embs}

    # ---- inference ---------------------------------------------------------------------
    def _step_params(self) -> list[Tensor]:
        dit = self.model
        mods = [p for blk in dit.transformer_blocks for p in blk.norm1.parameters()]
        return [*dit.timestep_encoder.parameters(), *mods, *dit.proj_out_1.parameters()]

    def step_conditioning(
        self, num_steps: int, horizon: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[list[Tensor], Tensor]:
        """Everything of the `num_steps` Euler steps that depends on the timestep only, one row per
        step: the AdaLN / output-head modulations ((n, 2 dim) each) and the action encoder's
        sinusoid ((n, horizon, hidden)). The buckets are fixed (0, 250, 500, 750 for 4 steps), so
        outside autograd this is computed once per model and kept until the weights change."""

        def build() -> tuple[list[Tensor], Tensor]:
            t = euler_timesteps(num_steps, self.config.num_timestep_buckets, 1, device)
            mods = self.model.time_modulation(t)
            return mods, self.action_encoder.time_features(t, horizon, dtype)

        amp = torch.is_autocast_enabled(device.type)
        key = (num_steps, horizon, dtype, str(device), amp)
        return self._step_cache.get(self._step_params(), build, key)

    @torch.no_grad()
    def sample(self, ctx: VLContext, embodiment_id: Tensor, init_noise: Tensor, num_steps: int | None = None):
        """Euler integration from t = 0 (noise) to t = 1 in `num_steps` steps (buckets k/n * 1000)."""
        n = int(num_steps or self.config.num_inference_timesteps)
        x = init_noise.to(self.dtype)
        b, horizon = x.shape[:2]
        dt = 1.0 / n
        all_t = euler_timesteps(n, self.config.num_timestep_buckets, b, x.device)
        mods_n, tau_n = self.step_conditioning(n, horizon, x.dtype, x.device)
        bound = BoundEmbodiment(self.action_encoder, self.action_decoder, embodiment_id)
        velocities = []
        for k in range(n):
            timesteps = all_t[k * b : (k + 1) * b]
            mods = [m[k : k + 1].expand(b, -1) for m in mods_n]
            tau = tau_n[k : k + 1].expand(b, -1, -1)
            v = self.velocity(ctx, x, timesteps, embodiment_id, tau, mods, bound)
            velocities.append(v)
            x = x + dt * v
        return x, velocities
