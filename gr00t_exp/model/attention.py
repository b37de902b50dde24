"""Attention for the LLM: PyTorch SDPA with GR00T's two padding behaviours.

The Qwen3 decoder layers are transformers' own; they look their attention function up by
`config._attn_implementation`. We register one more function, `gr00t_sdpa`, that

- runs `torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient kernels on GPU);
- takes a boolean mask built by `build_llm_mask` (causal + key padding), or no mask at all for an
  unpadded batch (`is_causal`);
- fixes the output of padded (left-padding) query rows explicitly, given `query_row_mask` (B, L)
  (1 = real token) and `padded_rows` = "zero" | "uniform":
  "zero": exact zeros, what flash-attention-2 (varlen) does and what the released checkpoints
  were trained with; "uniform": the mean of the values over all L positions, what the eager
  reference computes (a fully masked row sees the dtype minimum at every key, so its softmax is
  uniform). Padded rows get an all-True mask row so that no kernel ever sees a fully masked row:
  kernels disagree on what such a row gives (NaN, zeros, or uniform).

`eager_attention` is the same computation with an explicit softmax, for debugging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import AttentionInterface

ATTN_IMPL_NAME = "gr00t_sdpa"
EAGER_ATTN_IMPL_NAME = "gr00t_eager"


def build_llm_mask(attention_mask: Tensor) -> Tensor:
    """Boolean (B, 1, L, L) mask (True = attend) from a (B, L) 0/1 left-padding mask: causal over the
    real keys; rows of padded queries are all True (their output is replaced, see module doc)."""
    n = attention_mask.shape[1]
    real = attention_mask.to(torch.bool)
    causal = torch.ones(n, n, dtype=torch.bool, device=attention_mask.device).tril_()
    return (causal[None, None] & real[:, None, None, :]) | ~real[:, None, :, None]


def _expand_kv(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    n_rep = q.shape[1] // k.shape[1]
    if n_rep == 1:
        return k, v
    b, h, s, d = k.shape
    k = k[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)
    v = v[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)
    return k, v


def _finish(out: Tensor, value: Tensor, query_row_mask: Tensor | None, padded_rows: str) -> Tensor:
    """(B, H, L, D) -> (B, L, H, D) (transformers' layout) with padded query rows fixed."""
    if query_row_mask is not None:
        real = query_row_mask.to(torch.bool)[:, None, :, None]
        if padded_rows == "zero":
            out = out * real.to(out.dtype)
        elif padded_rows == "uniform":
            out = torch.where(real, out, value.mean(dim=2, keepdim=True).to(out.dtype))
        else:
            raise ValueError(f"padded_rows must be 'zero' or 'uniform', got {padded_rows!r}")
    return out.transpose(1, 2).contiguous()


def sdpa_attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    query_row_mask: Tensor | None = None,
    padded_rows: str = "zero",
    **_: object,
) -> tuple[Tensor, None]:
    """transformers attention-interface function (query (B, H, L, D), key/value (B, Hkv, S, D))."""
    causal = bool(getattr(module, "is_causal", False) if is_causal is None else is_causal)
    if attention_mask is None:
        out = F.scaled_dot_product_attention(
            query,
            key,
            value,
            dropout_p=dropout,
            scale=scaling,
            is_causal=causal,
            enable_gqa=query.shape[1] != key.shape[1],
        )
    else:
        key, value = _expand_kv(query, key, value)
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling
        )
    return _finish(out, value, query_row_mask, padded_rows), None


def eager_attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    query_row_mask: Tensor | None = None,
    padded_rows: str = "zero",
    **_: object,
) -> tuple[Tensor, None]:
    key, value = _expand_kv(query, key, value)
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    causal = bool(getattr(module, "is_causal", False) if is_causal is None else is_causal)
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif causal:
        n, s = scores.shape[-2:]
        keep = torch.ones(n, s, dtype=torch.bool, device=scores.device).tril_()
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = F.dropout(probs, p=dropout, training=dropout > 0)
    return _finish(torch.matmul(probs, value), value, query_row_mask, padded_rows), None


AttentionInterface.register(ATTN_IMPL_NAME, sdpa_attention)
AttentionInterface.register(EAGER_ATTN_IMPL_NAME, eager_attention)


def llm_attn_impl(name: str) -> str:
    """The registered function name for ModelConfig.attn_implementation ('sdpa' | 'eager')."""
    return {"sdpa": ATTN_IMPL_NAME, "eager": EAGER_ATTN_IMPL_NAME}[name]
