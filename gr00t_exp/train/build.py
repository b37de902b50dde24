"""Build the data module and the model of a run from the composed config (the only place that
knows the data and model packages' constructors)."""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig


def build_datamodule(cfg: DictConfig) -> Any:
    """The project's Gr00tDataModule (its `source_paths()` writes a synthetic dataset once, cached)."""
    from gr00t_exp.data.datamodule import Gr00tDataModule

    return Gr00tDataModule.from_config(cfg)


def build_model_for_training(cfg: DictConfig) -> Any:
    """build_model(cfg.model) then the tuning flags / LoRA of cfg.model."""
    from gr00t_exp.model import build_model
    from gr00t_exp.model.tuning import apply_tuning

    model = build_model(cfg.model, device=_build_device(cfg))
    apply_tuning(model, cfg.model)
    return model


def _build_device(cfg: DictConfig) -> str | None:
    """This process's GPU when training on GPUs (a random init there is much faster than on CPU).

    FSDP shards from CPU weights, so it builds on the CPU.
    """
    import torch

    strategy = cfg.trainer.strategy
    name = strategy if isinstance(strategy, str) else str(strategy.get("_target_", ""))
    if (
        cfg.trainer.accelerator not in ("gpu", "cuda", "auto")
        or not torch.cuda.is_available()
        or "fsdp" in name.lower()
    ):
        return None
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def ckpt_trainable_only(cfg: DictConfig) -> bool:
    """`auto`: trainable-only Lightning checkpoints when frozen weights come from a pretrained base."""
    mode = cfg.trainer.ckpt_weights
    if mode == "auto":
        return bool(cfg.model.base_model_path) and not cfg.model.random_init
    return mode == "trainable"
