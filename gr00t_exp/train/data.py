"""The training data wiring: the project's Gr00tDataModule with an endless, resumable order.

The DataModule (gr00t_exp.data) owns datasets, transforms and collation. For training, this
wrapper keeps its dataset and collate function and changes only *which* sample is read and *how
it is augmented*: the loader walks stream positions k = start, start + 1, ...; position k reads
the sample `ResumableSampler.index_at(k)` and the random video augmentation of a batch is seeded by
(seed, rank, its first position). The batch at a position is then a pure function of
(seed, position), whatever the workers, prefetching or an interruption did — so a run resumed at
optimiser step g (start = g * accumulate * batch size) reads exactly what the uninterrupted run read.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gr00t_exp.train.module import step_seed
from gr00t_exp.train.sampler import ResumableSampler


class _Positions(Sampler[int]):
    """start, start + 1, ... (endless; no __len__, so Lightning runs until max_steps)."""

    def __init__(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self) -> Iterator[int]:
        return itertools.count(self.start)


class PositionalDataset(Dataset):
    """Stream position -> sample, with the augmentation seeded by the position."""

    def __init__(self, dataset: Dataset, order: ResumableSampler, seed: int) -> None:
        self.dataset = dataset
        self.order = order
        self.seed = int(seed)

    def __len__(self) -> int:  # informative only: the positions are endless
        return len(self.dataset)

    def _generator(self, first: int) -> torch.Generator:
        return torch.Generator().manual_seed(step_seed(self.seed, first, self.order.rank, stream=3) % 2**63)

    def __getitems__(self, positions: Sequence[int]) -> list[dict]:
        positions = [int(k) for k in positions]
        indices = [self.order.index_at(k) for k in positions]
        ds = self.dataset
        gen = self._generator(positions[0])
        if hasattr(ds, "samples_at") and hasattr(ds, "locate"):  # one Gr00tDataset
            return ds.samples_at([ds.locate(i) for i in indices], generator=gen)
        if hasattr(ds, "draw") and hasattr(ds, "datasets"):  # a MixtureDataset
            draws = []
            for k, i in zip(positions, indices, strict=True):
                ds.set_epoch((k * self.order.world_size + self.order.rank) // max(1, len(ds)))
                draws.append(ds.draw(i))
            out: list[Any] = [None] * len(draws)
            for d in sorted({x[0] for x in draws}):
                pos = [j for j, x in enumerate(draws) if x[0] == d]
                for j, s in zip(
                    pos, ds.datasets[d].samples_at([draws[j][1:] for j in pos], generator=gen), strict=True
                ):
                    out[j] = s
            return out
        torch.manual_seed(gen.initial_seed())  # any other dataset: seed the global RNG instead
        return [ds[i] for i in indices]

    def __getitem__(self, position: int) -> dict:
        return self.__getitems__([position])[0]


class FetchTimer:
    """Seconds the training loop spent blocked in the DataLoader's `next()` (true data wait)."""

    def __init__(self) -> None:
        self.seconds = 0.0


class _TimedIterator:
    def __init__(self, it: Iterator, timer: FetchTimer) -> None:
        self._it = it
        self._timer = timer

    def __iter__(self) -> _TimedIterator:
        return self

    def __next__(self) -> Any:
        t0 = time.perf_counter()
        try:
            return next(self._it)
        finally:
            self._timer.seconds += time.perf_counter() - t0


class TimedDataLoader(DataLoader):
    """A DataLoader whose iterators add the time spent in `next()` to `timer` (the ThroughputMonitor
    reports it as data wait, apart from the loop's own overhead between steps)."""

    def __init__(self, *args: Any, timer: FetchTimer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timer = timer

    def __iter__(self) -> _TimedIterator:
        return _TimedIterator(super().__iter__(), self.timer)


class ResumableDataModule(pl.LightningDataModule):
    def __init__(self, inner: pl.LightningDataModule, seed: int, accumulate_grad_batches: int = 1) -> None:
        super().__init__()
        self.inner = inner
        self.seed = int(seed)
        self.accumulate = int(accumulate_grad_batches)
        self.fetch_timer = FetchTimer()

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
        dataset = base.dataset.dataset if isinstance(base.dataset, PositionalDataset) else base.dataset
        order = ResumableSampler(len(dataset), seed=self.seed, rank=rank, world_size=world)
        kw: dict[str, Any] = dict(
            batch_size=bs,
            sampler=_Positions(step * self.accumulate * bs),
            collate_fn=base.collate_fn,
            num_workers=base.num_workers,
            pin_memory=base.pin_memory,
            worker_init_fn=base.worker_init_fn,
            drop_last=False,
        )
        if base.num_workers > 0:
            kw["persistent_workers"] = base.persistent_workers
            kw["prefetch_factor"] = base.prefetch_factor
        return TimedDataLoader(PositionalDataset(dataset, order, self.seed), timer=self.fetch_timer, **kw)

    def val_dataloader(self) -> Any:
        return self.inner.val_dataloader()
