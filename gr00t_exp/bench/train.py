"""`python run.py mode=bench bench=train ...`: training throughput of the real pipeline.

Runs `bench.warmup + bench.iters` optimiser steps of the configured experiment (same data module,
model, precision and strategy as `mode=train`; no validation, checkpoints or loggers) and reports,
over the measured steps: samples/s (total and per device), the share of step time spent waiting
on the DataLoader (time blocked in its `next()`), the loop's overhead between steps, compute time
per step and peak GPU memory. Writes bench_train.json.

  python run.py mode=bench bench=train experiment=g1_inspire model.random_init=true data=synthetic
  python run.py mode=bench bench=train ... trainer=ddp trainer.devices=2     # DDP scaling
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, open_dict

from gr00t_exp.train import checks
from gr00t_exp.train.build import compile_options
from gr00t_exp.train.callbacks import ThroughputMonitor
from gr00t_exp.train.data import ResumableDataModule
from gr00t_exp.train.factory import build_trainer
from gr00t_exp.train.module import Gr00tLitModule
from gr00t_exp.train.resume import ResumeError
from gr00t_exp.train.run import prepare

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> int:
    b = cfg.bench
    steps = int(b.warmup) + int(b.iters)
    with open_dict(cfg):
        cfg.data.batch_size = int(b.batch_size)
        cfg.trainer.max_steps = steps
        cfg.trainer.resume = None
        cfg.trainer.val_check_interval = None
    try:
        out_dir, _, inner, _, _, model = prepare(cfg)
    except (checks.PreflightError, ResumeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    lit = Gr00tLitModule(
        model, cfg.trainer.optim, total_steps=steps, seed=cfg.seed, compile=compile_options(cfg)
    )
    # Window of 1 step: every step is recorded, the warm-up ones are dropped below.
    monitor = ThroughputMonitor(log_every=1, warn_fraction=1.1)
    trainer = build_trainer(
        cfg,
        [monitor],
        [],
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        log_every_n_steps=max(1, steps),
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    dm = ResumableDataModule(
        inner, seed=cfg.seed, accumulate_grad_batches=cfg.trainer.accumulate_grad_batches
    )
    trainer.fit(lit, datamodule=dm)
    hist = [h for h in monitor.history if h["step"] > int(b.warmup)]
    if not hist:
        print("error: no measured step (raise bench.iters)", file=sys.stderr)
        return 1
    wait = np.array([h["perf/data_wait_s"] for h in hist])
    comp = np.array([h["perf/compute_s"] for h in hist])
    over = np.array([h.get("perf/loop_overhead_s", 0.0) for h in hist])
    world = trainer.world_size
    total_s = float(wait.sum() + over.sum() + comp.sum())
    result = {
        "experiment": cfg.task_name,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "world_size": world,
        "batch_size_per_device": int(b.batch_size),
        "precision": cfg.trainer.precision,
        "measured_steps": len(hist),
        "samples_per_s": len(hist) * int(b.batch_size) * world / total_s,
        "samples_per_s_per_device": len(hist) * int(b.batch_size) / total_s,
        "step_s_median": float(np.median(wait + over + comp)),
        "compute_s_median": float(np.median(comp)),
        "data_wait_fraction": float(wait.sum() / total_s),
        # Between two steps but not waiting on data: host-to-device copy, Lightning hooks, logging.
        "loop_overhead_fraction": float(over.sum() / total_s),
        "peak_gpu_mem_gb": (torch.cuda.max_memory_allocated() / 2**30) if torch.cuda.is_available() else None,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_params": sum(p.numel() for p in model.parameters()),
    }
    if trainer.global_rank == 0:
        path = Path(out_dir) / "bench_train.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
        print(f"written: {path}")
    return 0
