"""A resumable, rank-aware, endless training sampler.

The order is a pure function of (seed, position): epoch `e` is a permutation (or a weighted draw)
seeded by (seed, e), and rank `r` of `w` takes global positions r, r + w, r + 2w, ... So a run
resumed at optimiser step g starts exactly where the uninterrupted run was
(position = g * accumulate_grad_batches * batch_size per rank), with no state to save besides g.
It is endless (no __len__): Lightning then sees one long epoch and `max_steps` ends training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    def __init__(
        self,
        num_samples: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        weights: Sequence[float] | None = None,
        shuffle: bool = True,
    ) -> None:
        if num_samples <= 0:
            raise ValueError("the training set is empty: no sample to draw (check data.val_episodes)")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.start = int(start)
        self.shuffle = shuffle
        self.weights = None
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (self.num_samples,) or (w < 0).any() or w.sum() <= 0:
                raise ValueError("sampler weights must be one non-negative weight per sample, not all zero")
            self.weights = w / w.sum()
        self._cache: tuple[int, np.ndarray] | None = None

    def set_start(self, start: int) -> None:
        """Per-rank position to start from (samples already drawn by this rank)."""
        self.start = int(start)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        if not self.shuffle:
            order = np.arange(self.num_samples)
        elif self.weights is None:
            order = rng.permutation(self.num_samples)
        else:
            order = rng.choice(self.num_samples, size=self.num_samples, replace=True, p=self.weights)
        self._cache = (epoch, order)
        return order

    def index_at(self, k: int) -> int:
        """The dataset index this rank draws at its k-th position."""
        pos = k * self.world_size + self.rank
        epoch, offset = divmod(pos, self.num_samples)
        return int(self._epoch_order(epoch)[offset])

    def __iter__(self) -> Iterator[int]:
        k = self.start
        while True:
            yield self.index_at(k)
            k += 1

    def state_dict(self) -> dict:
        return {"seed": self.seed, "start": self.start, "num_samples": self.num_samples}
