"""The training data wiring: the project's Gr00tDataModule with an endless, resumable sampler.

The DataModule (gr00t_exp.data) owns datasets, transforms and collation; this wrapper keeps all of
that and only replaces the training loader's sampler with `ResumableSampler`, positioned from the
trainer's global step, so a resumed run reads exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from gr00t_exp.train.module import step_seed
from gr00t_exp.train.sampler import ResumableSampler


class ResumableDataModule(pl.LightningDataModule):
    def __init__(self, inner: pl.LightningDataModule, seed: int, accumulate_grad_batches: int = 1) -> None:
        super().__init__()
        self.inner = inner
        self.seed = int(seed)
        self.accumulate = int(accumulate_grad_batches)

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str) -> None:
        self.inner.trainer = self.trainer
        self.inner.setup(stage)

    def train_dataloader(self) -> DataLoader:
        base = self.inner.train_dataloader()
        trainer = self.trainer
        step = trainer.global_step if trainer is not None else 0
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        bs = int(base.batch_size)
        weights = getattr(self.inner, "train_sample_weights", None)
        sampler = ResumableSampler(
            len(base.dataset),
            seed=self.seed,
            rank=rank,
            world_size=world,
            start=step * self.accumulate * bs,
            weights=weights() if callable(weights) else weights,
        )
        kw: dict[str, Any] = dict(
            batch_size=bs,
            sampler=sampler,
            collate_fn=base.collate_fn,
            num_workers=base.num_workers,
            pin_memory=base.pin_memory,
            worker_init_fn=base.worker_init_fn,
            # Worker seeds derive from this generator: deterministic for a given start position.
            generator=torch.Generator().manual_seed(step_seed(self.seed, step, rank, stream=2) % 2**63),
            drop_last=False,
        )
        if base.num_workers > 0:
            kw["persistent_workers"] = base.persistent_workers
            kw["prefetch_factor"] = base.prefetch_factor
        return DataLoader(base.dataset, **kw)

    def val_dataloader(self) -> Any:
        return self.inner.val_dataloader()
