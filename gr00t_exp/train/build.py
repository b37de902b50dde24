"""Build the data module and the model of a run from the composed config (the only place that
knows the data and model packages' constructors)."""

from __future__ import annotations

import os
from typing import Any

import torch
from omegaconf import DictConfig

from gr00t_exp.data.datamodule import Gr00tDataModule
from gr00t_exp.data.n16.datamodule import Gr00tN16DataModule
from gr00t_exp.model import build_model
from gr00t_exp.model.build import is_n16
from gr00t_exp.model.tuning import apply_tuning


def build_datamodule(cfg: DictConfig) -> Any:
    """The data module of the model family (the one place the data path is chosen by cfg.model):
    GR00T N1.6 -> Gr00tN16DataModule (N1.6 processor, its processor files), else the N1.5
    Gr00tDataModule. Its `source_paths()` writes a synthetic dataset once, cached."""
    if is_n16(cfg.model):
        return Gr00tN16DataModule.from_config(cfg)
    return Gr00tDataModule.from_config(cfg)


def build_model_for_training(cfg: DictConfig) -> Any:
    """build_model(cfg.model) then the tuning flags / LoRA of cfg.model."""
    model = build_model(cfg.model, device=_build_device(cfg))
    apply_tuning(model, cfg.model)
    dtype = frozen_dtype(cfg)
    if dtype is not None:
        cast_frozen(model, dtype)
    return model


def frozen_dtype(cfg: DictConfig) -> Any:
    """The dtype frozen weights train in (`model.frozen_dtype`), None = leave them as built."""
    choice = str(cfg.model.frozen_dtype)
    if choice == "auto":
        # FSDP flattens a unit's parameters into one buffer of one dtype (and casts for compute
        # itself): leave the weights as built there.
        if _is_fsdp(cfg):
            return None
        return torch.bfloat16 if str(cfg.trainer.precision).startswith("bf16") else None
    if choice not in ("float32", "bfloat16"):
        raise ValueError(f"model.frozen_dtype={choice!r}: use auto, float32 or bfloat16")
    return getattr(torch, choice)


def cast_frozen(model: Any, dtype: Any) -> int:
    """Cast every frozen floating-point parameter to `dtype` in place; returns how many were cast.

    Under bf16 autocast a frozen fp32 weight is recast to bf16 at each use and needs no master
    copy; storing it in bf16 halves its memory and removes those casts (upstream keeps the frozen
    backbone in bf16 too). Trainable parameters keep their dtype (fp32 master weights).
    """
    n = 0
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)
            n += 1
    return n


def _is_fsdp(cfg: DictConfig) -> bool:
    strategy = cfg.trainer.strategy
    name = strategy if isinstance(strategy, str) else str(strategy.get("_target_", ""))
    return "fsdp" in name.lower()


def _build_device(cfg: DictConfig) -> str | None:
    """This process's GPU when training on GPUs (a random init there is much faster than on CPU).

    FSDP shards from CPU weights, so it builds on the CPU.
    """
    if (
        cfg.trainer.accelerator not in ("gpu", "cuda", "auto")
        or not torch.cuda.is_available()
        or _is_fsdp(cfg)
    ):
        return None
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def compile_options(cfg: DictConfig) -> dict[str, Any] | None:
    """torch.compile keyword arguments of the training forward (`model.compile`), None = eager."""
    m = cfg.model
    if not m.compile:
        return None
    opts: dict[str, Any] = {"backend": str(m.compile_backend)}
    if m.compile_mode:
        opts["mode"] = str(m.compile_mode)
    return opts


def ckpt_trainable_only(cfg: DictConfig) -> bool:
    """`auto`: trainable-only Lightning checkpoints when frozen weights come from a pretrained base."""
    mode = cfg.trainer.ckpt_weights
    if mode == "auto":
        return bool(cfg.model.base_model_path) and not cfg.model.random_init
    return mode == "trainable"
