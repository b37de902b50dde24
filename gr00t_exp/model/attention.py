"""Attention for the LLM: PyTorch SDPA with GR00T's two padding behaviours.

The Qwen3 decoder layers are transformers' own; they look their attention function up by
`config._attn_implementation`. We register one more function, `gr00t_sdpa`, that

- runs `torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient kernels on GPU);
- takes an additive float mask built by `build_llm_mask` (causal + key padding, dtype minimum where
  masked, as transformers 4.51 built it), or no mask at all for an unpadded batch (`is_causal`);
- optionally multiplies the output by `query_row_mask` (B, L): padded query rows then produce exact
  zeros, which is what flash-attention-2 (varlen) does and what the released checkpoints were
  trained with. Without it a fully masked row sees the same huge negative score at every key,
  i.e. a uniform softmax over all L positions (the eager reference behaviour).

`eager_attention` is the same computation with an explicit softmax, for debugging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import AttentionInterface

ATTN_IMPL_NAME = "gr00t_sdpa"
EAGER_ATTN_IMPL_NAME = "gr00t_eager"


def build_llm_mask(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Additive (B, 1, L, L) mask from a (B, L) 0/1 padding mask: 0 = attend, dtype-min = masked."""
    b, n = attention_mask.shape
    keys = attention_mask.to(torch.bool)[:, None, None, :]
    causal = torch.ones(n, n, dtype=torch.bool, device=attention_mask.device).tril_()
    allowed = causal[None, None] & keys
    mask = torch.zeros(b, 1, n, n, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)


def _expand_kv(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    n_rep = q.shape[1] // k.shape[1]
    if n_rep == 1:
        return k, v
    b, h, s, d = k.shape
    k = k[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)
    v = v[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)
    return k, v


def _finish(out: Tensor, query_row_mask: Tensor | None) -> Tensor:
    out = out.transpose(1, 2)  # (B, L, H, D), the layout transformers' attention modules expect
    if query_row_mask is not None:
        out = out * query_row_mask[:, :, None, None].to(out.dtype)
    return out.contiguous()


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
    return _finish(out, query_row_mask), None


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
    **_: object,
) -> tuple[Tensor, None]:
    key, value = _expand_kv(query, key, value)
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    causal = bool(getattr(module, "is_causal", False) if is_causal is None else is_causal)
    if attention_mask is not None:
        scores = scores + attention_mask
    elif causal:
        n, s = scores.shape[-2:]
        keep = torch.ones(n, s, dtype=torch.bool, device=scores.device).tril_()
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = F.dropout(probs, p=dropout, training=dropout > 0)
    return _finish(torch.matmul(probs, value), query_row_mask), None


AttentionInterface.register(ATTN_IMPL_NAME, sdpa_attention)
AttentionInterface.register(EAGER_ATTN_IMPL_NAME, eager_attention)


def llm_attn_impl(name: str) -> str:
    """The registered function name for ModelConfig.attn_implementation ('sdpa' | 'eager')."""
    return {"sdpa": ATTN_IMPL_NAME, "eager": EAGER_ATTN_IMPL_NAME}[name]
