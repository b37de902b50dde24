"""Training callbacks: throughput with the data-wait / compute split, GPU memory, per-step seeding.

Step time is split at the Lightning hooks: from batch start to batch end is forward + backward +
optimiser (compute); the gap from the end of one batch to the start of the next is the data wait
(time blocked in the DataLoader's `next()`, measured by the data module's FetchTimer) plus the
loop's own overhead (host-to-device copy, hooks, logging). Without a FetchTimer the whole gap
counts as data wait. On CUDA the end is synchronised so the split is not skewed by asynchronous
kernels. A run whose data share exceeds `warn_fraction` says it is data-bound.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import RichProgressBar

log = logging.getLogger(__name__)


def _batch_size(batch: Any) -> int:
    if isinstance(batch, dict):
        for key in ("action", "state", "embodiment_id"):
            if key in batch and hasattr(batch[key], "shape"):
                return int(batch[key].shape[0])
        for v in batch.values():
            if hasattr(v, "shape") and len(v.shape) > 0:
                return int(v.shape[0])
    if isinstance(batch, (list, tuple)) and batch and hasattr(batch[0], "shape"):
        return int(batch[0].shape[0])
    return 0


class ThroughputMonitor(pl.Callback):
    """Logs perf/{data_wait_s, compute_s, data_wait_frac, samples_per_s, gpu_mem_gb} every `log_every` steps."""

    def __init__(self, log_every: int = 10, warn_fraction: float = 0.2, sync_cuda: bool = True) -> None:
        self.log_every = max(1, int(log_every))
        self.warn_fraction = warn_fraction
        self.sync_cuda = sync_cuda
        self._last_end: float | None = None
        self._start = 0.0
        self._wait = 0.0
        self._overhead = 0.0
        self._fetch_mark: float | None = None
        self._compute = 0.0
        self._samples = 0
        self._batches = 0
        self.history: list[dict[str, float]] = []  # one entry per logged window (also for benchmarks)
        self._warned = False

    def _sync(self, trainer: pl.Trainer) -> None:
        if self.sync_cuda and torch.cuda.is_available() and trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_end = None  # the first fetch includes DataLoader start-up: not counted
        self._fetch_mark = None

    @staticmethod
    def _fetch_seconds(trainer: pl.Trainer) -> float | None:
        timer = getattr(getattr(trainer, "datamodule", None), "fetch_timer", None)
        return None if timer is None else float(timer.seconds)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        fetched = self._fetch_seconds(trainer)
        if self._last_end is not None:
            gap = now - self._last_end
            if fetched is not None and self._fetch_mark is not None:
                wait = min(gap, max(0.0, fetched - self._fetch_mark))
            else:
                wait = gap
            self._wait += wait
            self._overhead += gap - wait
        self._start = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._sync(trainer)
        now = time.perf_counter()
        if self._last_end is not None:  # only batches with a measured wait enter the window
            self._compute += now - self._start
            self._samples += _batch_size(batch) * trainer.world_size
            self._batches += 1
        self._last_end = now
        self._fetch_mark = self._fetch_seconds(trainer)
        if self._batches >= self.log_every:
            self._flush(trainer, pl_module)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._last_end = None  # validation time is not data wait

    def _flush(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total = self._wait + self._overhead + self._compute
        stats = {
            "perf/data_wait_s": self._wait / self._batches,
            "perf/loop_overhead_s": self._overhead / self._batches,
            "perf/compute_s": self._compute / self._batches,
            "perf/data_wait_frac": self._wait / total if total > 0 else 0.0,
            "perf/samples_per_s": self._samples / total if total > 0 else 0.0,
        }
        stats["perf/samples_per_s_per_device"] = stats["perf/samples_per_s"] / max(1, trainer.world_size)
        dev = trainer.strategy.root_device
        if dev.type == "cuda":
            stats["perf/gpu_mem_gb"] = torch.cuda.memory_allocated(dev) / 2**30
            stats["perf/gpu_peak_mem_gb"] = torch.cuda.max_memory_allocated(dev) / 2**30
        self.history.append(dict(stats, step=float(trainer.global_step)))
        pl_module.log_dict(stats, on_step=True, on_epoch=False, rank_zero_only=True)
        if stats["perf/data_wait_frac"] > self.warn_fraction and not self._warned:
            log.warning(
                "data-bound: %.0f%% of step time waits on the DataLoader (%.3fs wait vs %.3fs compute per "
                "batch); raise data.num_workers or enable data.cache",
                100 * stats["perf/data_wait_frac"],
                stats["perf/data_wait_s"],
                stats["perf/compute_s"],
            )
            self._warned = True
        self._wait = self._overhead = self._compute = 0.0
        self._samples = self._batches = 0


def step_progress_bar() -> pl.Callback:
    """Rich progress bar whose total is the run's optimiser steps (the training loader is endless,
    so the default per-epoch total would be unknown and the bar would show no ETA)."""

    class StepRichProgressBar(RichProgressBar):
        @property
        def total_train_batches(self) -> int | float:
            t = self.trainer
            if t.max_steps and t.max_steps > 0:
                return t.max_steps * t.accumulate_grad_batches
            return super().total_train_batches

        def _get_train_description(self, current_epoch: int) -> str:
            return f"{'Training (steps)':{len(self.validation_description)}}"

    return StepRichProgressBar(leave=True)
