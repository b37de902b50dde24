"""ThroughputMonitor: the step-time split into data wait, loop overhead and compute."""

from __future__ import annotations

import time

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import Dataset

from gr00t_exp.train.callbacks import ThroughputMonitor
from gr00t_exp.train.data import FetchTimer, TimedDataLoader


class SlowData(Dataset):
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def __len__(self) -> int:
        return 10_000

    def __getitem__(self, i: int) -> dict:
        time.sleep(self.delay_s)
        return {"x": torch.ones(4), "action": torch.zeros(2)}


class SlowStep(pl.LightningModule):
    def __init__(self, compute_s: float) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.compute_s = compute_s

    def training_step(self, batch, batch_idx):
        time.sleep(self.compute_s)
        return self.lin(batch["x"]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TimedData(pl.LightningDataModule):
    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.fetch_timer = FetchTimer()

    def train_dataloader(self):
        return TimedDataLoader(SlowData(self.delay_s), batch_size=2, timer=self.fetch_timer)


def test_timed_loader_counts_time_blocked_in_next():
    timer = FetchTimer()
    loader = TimedDataLoader(SlowData(0.02), batch_size=1, timer=timer)
    it = iter(loader)
    for _ in range(5):
        next(it)
    assert 0.1 <= timer.seconds < 1.0


def _fit(delay_s: float, compute_s: float) -> dict:
    monitor = ThroughputMonitor(log_every=4, warn_fraction=1.1)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=9,
        callbacks=[monitor],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(SlowStep(compute_s), datamodule=TimedData(delay_s))
    assert len(monitor.history) == 2  # steps 2-9 in windows of 4 (the first fetch is not counted)
    return monitor.history[-1]


def test_data_bound_run_reports_data_wait():
    h = _fit(delay_s=0.03, compute_s=0.0)  # 2 samples x 30 ms per batch, no compute
    assert h["perf/data_wait_frac"] > 0.7
    assert h["perf/data_wait_s"] == pytest.approx(0.06, abs=0.03)


def test_compute_bound_run_reports_compute():
    h = _fit(delay_s=0.0, compute_s=0.05)
    assert h["perf/data_wait_frac"] < 0.2
    assert h["perf/compute_s"] == pytest.approx(0.05, abs=0.03)
    assert h["perf/loop_overhead_s"] >= 0.0
    assert h["perf/samples_per_s"] == pytest.approx(
        2 / (h["perf/compute_s"] + h["perf/data_wait_s"] + h["perf/loop_overhead_s"]), rel=1e-6
    )
