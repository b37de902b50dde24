"""Transformer pieces of the action head: the VL self-attention stack and the flow-matching DiT.

Parameter names follow the N1.5 checkpoint (diffusers-style): `transformer_blocks.N.{norm1, attn1.
{to_q, to_k, to_v, to_out.0}, norm3, ff.net.0.proj, ff.net.2}`, `timestep_encoder.timestep_embedder.
{linear_1, linear_2}`, `proj_out_1`, `proj_out_2`. Attention is `F.scaled_dot_product_attention`;
N1.5 never masks (no mask argument reaches SDPA), N1.6 passes a boolean key mask per cross-attention
block (`DiT.forward(..., cross_masks=...)`: text-only / image-only VL tokens, padding excluded).

Speed: the keys/values of the VL tokens in the cross-attention blocks depend only on the VL
features, so `DiT.cross_kv` computes them once and every denoising step reuses them. Outside
autograd (inference) q/k/v (self-attention) and k/v (cross-attention) run as one GEMM over
concatenated weights (derived.py keeps them while the weights are unchanged); the action head
keeps `time_modulation` of its fixed Euler buckets the same way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gr00t_exp.model.derived import DerivedCache, caching_enabled

KV = tuple[Tensor, Tensor]


class Attention(nn.Module):
    """Multi-head attention with biased q/k/v/out projections (diffusers `Attention` layout)."""

    def __init__(self, query_dim: int, heads: int, dim_head: int, kv_dim: int | None, dropout: float) -> None:
        super().__init__()
        inner = heads * dim_head
        kv_dim = kv_dim or query_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner)
        self.to_k = nn.Linear(kv_dim, inner)
        self.to_v = nn.Linear(kv_dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(dropout)])
        # Inference only: concatenated [to_q | to_k | to_v] (self-attention) and [to_k | to_v]
        # weights, one GEMM instead of three / two; rebuilt when the weights change.
        self._fused = DerivedCache()

    def _split(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, -1).transpose(1, 2)

    def _fused_linear(self, x: Tensor, parts: tuple[nn.Linear, ...], name: str) -> list[Tensor]:
        """`x` through the concatenation of `parts` in one GEMM, split back per part."""
        params = [t for lin in parts for t in (lin.weight, lin.bias)]
        w, b = self._fused.get(
            params,
            lambda: (torch.cat([lin.weight for lin in parts]), torch.cat([lin.bias for lin in parts])),
            name,
        )
        return list(F.linear(x, w, b).split([lin.out_features for lin in parts], dim=-1))

    def _fusable(self, *parts: nn.Module) -> bool:
        """Plain linear layers only: a LoRA-wrapped projection (peft) adds its adapter in its own
        forward, which a GEMM over the base weights would skip."""
        return caching_enabled() and all(type(lin) is nn.Linear for lin in parts)

    def kv(self, context: Tensor) -> KV:
        """Keys and values of `context`, split into heads: (B, H, S, Dh) each."""
        if self._fusable(self.to_k, self.to_v):
            k, v = self._fused_linear(context, (self.to_k, self.to_v), "kv")
            return self._split(k), self._split(v)
        return self._split(self.to_k(context)), self._split(self.to_v(context))

    def forward(
        self, x: Tensor, context: Tensor | None = None, kv: KV | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """`mask`: boolean (B, 1, 1, S) key mask, True = attend (None = every key, N1.5)."""
        if kv is None and context is None and self._fusable(self.to_q, self.to_k, self.to_v):
            q, k, v = (
                self._split(t) for t in self._fused_linear(x, (self.to_q, self.to_k, self.to_v), "qkv")
            )
            return self._attend(x, q, k, v, mask)
        q = self._split(self.to_q(x))
        k, v = kv if kv is not None else self.kv(x if context is None else context)
        return self._attend(x, q, k, v, mask)

    def _attend(self, x: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = self.to_out[0](out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))
        return self.to_out[1](out) if self.training else out


class GELUProj(nn.Module):
    """Linear then tanh-GELU (diffusers `GELU(approximate='tanh')`: key `proj`)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """`net` = [GELUProj(d, 4d), Dropout, Linear(4d, d), Dropout (final_dropout)]."""

    def __init__(self, dim: int, dropout: float, final_dropout: bool, mult: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [GELUProj(dim, dim * mult), nn.Dropout(dropout), nn.Linear(dim * mult, dim)]
        if final_dropout:
            layers.append(nn.Dropout(dropout))
        self.net = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            for layer in self.net:
                x = layer(x)
            return x
        return self.net[2](self.net[0](x))  # dropouts are identities in eval: skip their calls


class AdaLayerNorm(nn.Module):
    """LayerNorm (no affine) modulated by the timestep embedding; `linear` output chunks as (scale, shift).

    Split in two so the DiT can compute every block's modulation for every denoising step up front:
    `modulation(silu(temb))` -> (B, 2 dim), then `forward(x, modulation)`.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)

    def modulation(self, silu_temb: Tensor) -> Tensor:
        return self.linear(silu_temb)

    def forward(self, x: Tensor, modulation: Tensor) -> Tensor:
        scale, shift = modulation.chunk(2, dim=1)
        return torch.addcmul(shift[:, None], self.norm(x), 1 + scale[:, None])


class TransformerBlock(nn.Module):
    """Pre-norm attention + feed-forward block (diffusers `BasicTransformerBlock` as GR00T uses it).

    `ada_norm=True` (DiT): norm1 is AdaLayerNorm on the timestep, norm3 a LayerNorm without affine.
    `ada_norm=False` (VL self-attention): both are affine LayerNorms.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        dropout: float,
        final_dropout: bool,
        ada_norm: bool,
        cross_attention_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.ada_norm = ada_norm
        self.is_cross = cross_attention_dim is not None
        self.norm1 = AdaLayerNorm(dim) if ada_norm else nn.LayerNorm(dim, eps=1e-5)
        self.attn1 = Attention(dim, heads, dim_head, cross_attention_dim, dropout)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=not ada_norm)
        self.ff = FeedForward(dim, dropout, final_dropout)
        self.final_dropout = nn.Dropout(dropout) if final_dropout else nn.Identity()

    def forward(
        self,
        x: Tensor,
        modulation: Tensor | None = None,
        kv: KV | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        """`modulation`: this block's AdaLN (scale | shift) from `norm1.modulation` (DiT only);
        `mask`: key mask of a cross-attention block (N1.6), see `Attention.forward`."""
        h = self.norm1(x, modulation) if self.ada_norm else self.norm1(x)
        attn = self.attn1(h, kv=kv, mask=mask)
        x = x + (self.final_dropout(attn) if self.training else attn)
        return x + self.ff(self.norm3(x))


class SelfAttentionTransformer(nn.Module):
    """`action_head.vl_self_attention`: plain pre-norm blocks over the VL tokens, no mask, no final norm."""

    def __init__(
        self, dim: int, heads: int, dim_head: int, num_layers: int, dropout: float, final_dropout: bool
    ):
        super().__init__()
        self.transformer_blocks = nn.ModuleList(
            [
                TransformerBlock(dim, heads, dim_head, dropout, final_dropout, ada_norm=False)
                for _ in range(num_layers)
            ]
        )
        self.gradient_checkpointing = False

    def forward(self, x: Tensor) -> Tensor:
        for block in self.transformer_blocks:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def timestep_sinusoid(
    timesteps: Tensor, dim: int = 256, max_period: float = 10000.0, exact_frequencies: bool = False
) -> Tensor:
    """diffusers `Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=1)`: [cos | sin].

    The float32 op order is the reference's, so the frequencies are bit-identical (buckets reach
    999, where a one-ulp frequency difference would show). `exact_frequencies` (N1.6) rounds
    exp(exponent) correctly (computed in float64): torch.exp's float32 result can be one ulp off
    depending on the CPU's SIMD code, which moves bucket x frequency by up to 750 * 6e-8.
    """
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
    exponent = exponent / (half - 1)
    freqs = torch.exp(exponent.double()).float() if exact_frequencies else torch.exp(exponent)
    arg = timesteps[:, None].float() * freqs[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


class TimestepEmbedder(nn.Module):
    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class TimestepEncoder(nn.Module):
    # True (set by N1.6's action head): correctly rounded sinusoid frequencies, see timestep_sinusoid.
    exact_frequencies: bool = False

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.timestep_embedder = TimestepEmbedder(freq_dim, dim)

    def forward(self, timesteps: Tensor) -> Tensor:
        proj = timestep_sinusoid(timesteps, self.freq_dim, exact_frequencies=self.exact_frequencies)
        return self.timestep_embedder(proj.to(self.timestep_embedder.linear_1.weight.dtype))


class DiT(nn.Module):
    """`action_head.model`: 16 AdaLN blocks; even blocks cross-attend to the VL tokens, odd ones
    self-attend (with `interleave_self_attention`), then an AdaLN-modulated output projection."""

    def __init__(
        self,
        num_attention_heads: int,
        attention_head_dim: int,
        num_layers: int,
        cross_attention_dim: int,
        output_dim: int,
        dropout: float,
        final_dropout: bool,
        interleave_self_attention: bool,
        **_: object,
    ) -> None:
        super().__init__()
        dim = num_attention_heads * attention_head_dim
        self.dim = dim
        self.timestep_encoder = TimestepEncoder(dim)
        self.transformer_blocks = nn.ModuleList(
            [
                TransformerBlock(
                    dim,
                    num_attention_heads,
                    attention_head_dim,
                    dropout,
                    final_dropout,
                    ada_norm=True,
                    cross_attention_dim=(
                        None if (interleave_self_attention and i % 2 == 1) else cross_attention_dim
                    ),
                )
                for i in range(num_layers)
            ]
        )
        self.norm_out = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.proj_out_1 = nn.Linear(dim, 2 * dim)
        self.proj_out_2 = nn.Linear(dim, output_dim)
        self.gradient_checkpointing = False

    def cross_kv(self, context: Tensor) -> list[KV | None]:
        """Per block: (K, V) of the VL tokens for cross-attention blocks, None for self-attention."""
        return [blk.attn1.kv(context) if blk.is_cross else None for blk in self.transformer_blocks]

    def time_modulation(self, timesteps: Tensor) -> list[Tensor]:
        """Everything the timestep conditions, for (N,) integer buckets: one (N, 2 dim) tensor per
        block (AdaLN scale | shift) and a last one for the output head (shift | scale).

        Depends on the timestep only, so sampling computes it for all denoising steps in one go.
        """
        silu_temb = F.silu(self.timestep_encoder(timesteps))
        mods = [blk.norm1.modulation(silu_temb) for blk in self.transformer_blocks]
        return [*mods, self.proj_out_1(silu_temb)]

    def forward(
        self,
        x: Tensor,
        timesteps: Tensor | None,
        cross_kv: list[KV | None],
        num_out_tokens: int | None = None,
        modulation: list[Tensor] | None = None,
        cross_masks: list[Tensor | None] | None = None,
    ) -> Tensor:
        """x (B, N, dim) tokens, timesteps (B,) integer buckets -> (B, num_out_tokens or N, output_dim).

        `modulation`: precomputed `time_modulation(timesteps)` (then `timesteps` is not used).
        `cross_masks`: per block, a boolean (B, 1, 1, S) key mask or None (N1.6's alternating
        text / image cross-attention); None = no mask anywhere (N1.5).
        `num_out_tokens` keeps only the last rows for the (per-token) output projection: GR00T only
        decodes the last `action_horizon` tokens.
        """
        mods = modulation if modulation is not None else self.time_modulation(timesteps)
        masks = cross_masks if cross_masks is not None else [None] * len(self.transformer_blocks)
        for block, mod, kv, mask in zip(self.transformer_blocks, mods[:-1], cross_kv, masks, strict=True):
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, mod, kv, mask, use_reentrant=False)
            else:
                x = block(x, mod, kv, mask)
        if num_out_tokens is not None:
            x = x[:, -num_out_tokens:]
        shift, scale = mods[-1].chunk(2, dim=1)
        x = torch.addcmul(shift[:, None], self.norm_out(x), 1 + scale[:, None])
        return self.proj_out_2(x)
