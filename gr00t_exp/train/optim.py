"""AdamW and the warmup + decay schedule of upstream's fine-tuning (gr00t_finetune.py / HF Trainer)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from gr00t_exp.train.config import OptimConfig


def _no_decay(name: str, param: nn.Parameter) -> bool:
    # HF Trainer excludes biases and LayerNorm weights; 1-D parameters cover both (and RMSNorm).
    return param.ndim < 2 or name.endswith(".bias")


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Trainable parameters split into a decayed and a non-decayed group (empty groups dropped)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if cfg.no_decay_for_bias_and_norm and _no_decay(name, p) else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError(
            "the model has no trainable parameter: check model.tune_llm / tune_visual / tune_projector / "
            "tune_diffusion_model / lora.rank (at least one must train something)"
        )
    return groups


def use_fused(model: nn.Module, cfg: OptimConfig, precision: str) -> bool:
    """`trainer.optim.fused`: null = fused AdamW when every trainable parameter is on a CUDA device
    and no gradient scaler is in play (fp16's scaler must unscale before a fused step can clip)."""
    params = [p for p in model.parameters() if p.requires_grad]
    on_cuda = bool(params) and all(p.is_cuda for p in params)
    if cfg.fused is None:
        return on_cuda and not str(precision).startswith("16")
    if cfg.fused and str(precision).startswith("16"):
        raise ValueError(
            f"trainer.optim.fused=true with trainer.precision={precision}: the fp16 gradient scaler "
            "cannot unscale for a fused optimiser; use bf16-mixed or trainer.optim.fused=false"
        )
    if cfg.fused and not on_cuda:
        raise ValueError("trainer.optim.fused=true needs the parameters on a CUDA device; set it to null")
    return bool(cfg.fused)


def build_optimizer(model: nn.Module, cfg: OptimConfig, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW over `param_groups`; `fused` = one CUDA kernel for the whole update (else foreach)."""
    if len(cfg.betas) != 2:
        raise ValueError(f"trainer.optim.betas must have 2 values, got {list(cfg.betas)}")
    return torch.optim.AdamW(
        param_groups(model, cfg),
        lr=cfg.lr,
        betas=(float(cfg.betas[0]), float(cfg.betas[1])),
        eps=cfg.eps,
        fused=True if fused else None,
    )


def lr_lambda(step: int, total_steps: int, warmup_ratio: float, kind: str) -> float:
    """The LR multiplier at optimiser step `step` (HF's get_*_schedule_with_warmup shapes)."""
    if kind not in ("cosine", "linear", "constant"):
        raise ValueError(f"trainer.optim.scheduler={kind!r} is unknown; use cosine, linear or constant")
    warmup = math.ceil(warmup_ratio * total_steps)
    if step < warmup:
        return float(step) / float(max(1, warmup))
    if kind == "constant":
        return 1.0
    progress = float(step - warmup) / float(max(1, total_steps - warmup))
    if kind == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return max(0.0, 1.0 - progress)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int) -> LambdaLR:
    lr_lambda(0, total_steps, cfg.warmup_ratio, cfg.scheduler)  # fail early on a bad name
    return LambdaLR(optimizer, lambda s: lr_lambda(s, total_steps, cfg.warmup_ratio, cfg.scheduler))
