"""Build the Lightning Trainer, its loggers and callbacks from the composed config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint

from gr00t_exp.train.callbacks import ThroughputMonitor, step_progress_bar
from gr00t_exp.train.checkpoint import AtomicCheckpointIO

log = logging.getLogger(__name__)


def build_loggers(cfg: DictConfig) -> list[Any]:
    """One logger per entry of the `logger` group (dicts with _target_); none -> no logger."""
    loggers = []
    for name, node in (cfg.logger or {}).items():
        if isinstance(node, DictConfig) and "_target_" in node:
            loggers.append(instantiate(node))
        else:
            log.warning("logger.%s has no _target_; skipped", name)
    return loggers


def build_callbacks(
    cfg: DictConfig, ckpt_dir: Path
) -> tuple[list[Callback], ModelCheckpoint, ModelCheckpoint | None]:
    t = cfg.trainer
    periodic = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="{step:07d}",
        every_n_train_steps=t.checkpoint_every_n_steps,
        monitor="step",
        mode="max",
        save_top_k=t.save_top_k,
        save_on_train_epoch_end=False,
        save_last=False,
    )
    best = None
    cbs: list[Callback] = [periodic]
    if t.val_check_interval:
        best = ModelCheckpoint(
            dirpath=ckpt_dir / "best",
            filename="best-{step:07d}",
            monitor=t.monitor,
            mode=t.monitor_mode,
            save_top_k=1,
            auto_insert_metric_name=True,
        )
        cbs.append(best)
    cbs.append(ThroughputMonitor(log_every=t.log_every_n_steps, warn_fraction=t.data_wait_warn_fraction))
    if cfg.logger:
        cbs.append(LearningRateMonitor(logging_interval="step"))
    if t.progress_bar == "rich":
        cbs.append(step_progress_bar())
    return cbs, periodic, best


def _strategy(cfg: DictConfig) -> Any:
    s = cfg.trainer.strategy
    if isinstance(s, DictConfig):
        return instantiate(s)
    return s


def build_trainer(
    cfg: DictConfig, callbacks: list[Callback], loggers: list[Any], **overrides: Any
) -> pl.Trainer:
    t = cfg.trainer
    if t.tf32 and torch.cuda.is_available() and t.accelerator != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    kwargs: dict[str, Any] = dict(
        accelerator=t.accelerator,
        devices=OmegaConf.to_object(t.devices) if OmegaConf.is_config(t.devices) else t.devices,
        num_nodes=t.num_nodes,
        strategy=_strategy(cfg),
        precision=t.precision,
        max_steps=t.max_steps,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        # The training loader is endless: validation counts training batches, not epochs.
        val_check_interval=(t.val_check_interval or t.max_steps) * t.accumulate_grad_batches,
        check_val_every_n_epoch=None,
        limit_val_batches=t.limit_val_batches if t.val_check_interval else 0,
        num_sanity_val_steps=t.num_sanity_val_steps,
        log_every_n_steps=t.log_every_n_steps,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=t.progress_bar != "none",
        enable_model_summary=False,
        deterministic=t.deterministic,
        profiler=t.profiler,
        plugins=[AtomicCheckpointIO()],
        # Our ResumableSampler already shards by rank; Lightning must not replace it.
        use_distributed_sampler=False,
        default_root_dir=cfg.paths.output_dir,
    )
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)
