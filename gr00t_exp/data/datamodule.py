"""LightningDataModule: datasets, train/val split by episode, loaders, statistics.

Split: the last `data.val_episodes` episodes of each source are held out for validation (eval
transforms: centre crop, no jitter). `data.kind=synthetic` writes (or reuses) the synthetic
dataset first. Statistics: the dataset's meta/stats.json when valid, else computed once and
cached under `paths.cache_dir` (the dataset is never written). With the frame cache enabled,
`setup` decodes every episode once up front (in the main process, before workers start).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from gr00t_exp.data.collate import Gr00tCollator
from gr00t_exp.data.dataset import MixtureDataset
from gr00t_exp.data.factory import (
    LOADER_FIELDS,
    MIXTURE_FIELDS,
    make_dataset,
    make_frame_cache,
    split_episodes,
)
from gr00t_exp.data.meta import DatasetMeta, load_meta
from gr00t_exp.data.transforms.normalize import key_stats
from gr00t_exp.data.video import FrameCache

log = logging.getLogger(__name__)


def worker_init_fn(worker_id: int) -> None:
    # One intra-op thread per worker: the workers are the parallelism (no oversubscription).
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        np.random.seed(info.seed % 2**32)


class Gr00tDataModule(pl.LightningDataModule):
    """data_cfg: DataConfig (the composed `cfg.data`, read by attribute); embodiment:
    EmbodimentConfig; processor: a Gr00tProcessor-like callable (None = the shipped
    Gr00tProcessor, loaded on first use); cache_dir: where computed statistics go (defaults to the
    frame cache's parent)."""

    def __init__(
        self,
        data_cfg: Any,
        embodiment: Any,
        processor: Any = None,
        cache_dir: str | Path | None = None,
        seed: int = 42,
        synthetic_dir: str | Path | None = None,
    ):
        super().__init__()
        self.cfg = data_cfg
        self.embodiment = embodiment
        self._processor = processor
        self.seed = seed
        self.cache_dir = Path(cache_dir) if cache_dir else Path(data_cfg.cache.dir).parent
        self.synthetic_dir = synthetic_dir
        self.metas: list[DatasetMeta] = []
        self.stats: list[dict] = []
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    @classmethod
    def from_config(cls, cfg: Any, processor: Any = None) -> Gr00tDataModule:
        return cls(cfg.data, cfg.embodiment, processor, cache_dir=cfg.paths.cache_dir, seed=int(cfg.seed))

    # ------------------------------------------------------------------ sources
    def source_paths(self) -> list[tuple[Path, float]]:
        kind = str(self.cfg.kind)
        if kind == "synthetic":
            from gr00t_exp.data.synthetic import write_synthetic_dataset

            s = self.cfg.synthetic
            out = write_synthetic_dataset(
                self.synthetic_dir or s.out_dir,
                self.embodiment,
                episodes=s.episodes,
                min_length=s.min_length,
                max_length=s.max_length,
                fps=s.fps,
                height=s.height,
                width=s.width,
                seed=s.seed,
            )
            return [(Path(out), 1.0)]
        if kind == "lerobot":
            srcs = list(self.cfg.sources or [])
            if not srcs:
                raise ValueError("data.kind=lerobot needs data.sources=[{path: /your/dataset, weight: 1.0}]")
            return [(Path(str(s.path)).expanduser(), float(s.weight)) for s in srcs]
        raise ValueError(f"data.kind={kind!r} is unknown; use synthetic or lerobot")

    def prepare_data(self) -> None:
        self.source_paths()  # writes the synthetic dataset once (rank 0)

    @property
    def processor(self):
        if self._processor is None:
            from gr00t_exp.model.processor import Gr00tProcessor

            self._processor = Gr00tProcessor.from_pretrained(None)
        return self._processor

    def frame_cache(self) -> FrameCache | None:
        return make_frame_cache(self.cfg)

    # ------------------------------------------------------------------ datasets
    def dataset(
        self,
        meta: DatasetMeta,
        stats: dict,
        episodes: list[int],
        *,
        training: bool,
        frame_cache: FrameCache | None,
    ) -> Dataset:
        """A dataset of `episodes` of one source, configured by every dataset field of data_cfg."""
        return make_dataset(
            self.cfg,
            meta,
            self.embodiment,
            stats,
            episodes=episodes,
            training=training,
            frame_cache=frame_cache,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from gr00t_exp.data.stats import load_or_compute_stats

        cache = self.frame_cache()
        trains, vals, weights = [], [], []
        for path, weight in self.source_paths():
            meta = load_meta(path, self.embodiment)
            stats = load_or_compute_stats(meta, self.cache_dir)
            self.metas.append(meta)
            self.stats.append(stats)
            train_eps, held_out = split_episodes(self.cfg, meta)
            tr = self.dataset(meta, stats, train_eps, training=True, frame_cache=cache)
            trains.append(tr)
            weights.append(weight)
            if held_out:
                vals.append(self.dataset(meta, stats, held_out, training=False, frame_cache=cache))
            if cache is not None and bool(self.cfg.cache.build_on_setup):
                tr.warm_cache()
                if held_out:
                    vals[-1].warm_cache()
        if len(trains) == 1:
            self.train_set = trains[0]
        else:
            mixture = {name: getattr(self.cfg, name) for name in MIXTURE_FIELDS}
            self.train_set = MixtureDataset(trains, weights, seed=self.seed, **mixture)
        self.val_set = (vals[0] if len(vals) == 1 else ConcatDataset(vals)) if vals else None

    # ------------------------------------------------------------------ loaders
    def loader_kwargs(self) -> dict[str, Any]:
        """Every LOADER_FIELDS value of data_cfg as a DataLoader keyword; pinning only with CUDA, and
        the worker-only options only with workers (DataLoader refuses them otherwise)."""
        kw = {name: getattr(self.cfg, name) for name in LOADER_FIELDS}
        kw["pin_memory"] = bool(kw["pin_memory"]) and torch.cuda.is_available()
        if int(kw["num_workers"]) == 0:
            del kw["persistent_workers"], kw["prefetch_factor"]
        return kw

    def collate_fn(self, training: bool = False) -> Any:
        """Samples -> model batch (a model family's data module may process differently; `training`
        says whether the loader is the training one)."""
        return Gr00tCollator(self.processor)

    def _loader(
        self, ds: Dataset, shuffle: bool, batch_size: int | None = None, training: bool = False
    ) -> DataLoader:
        kw = self.loader_kwargs()
        if batch_size is not None:
            kw["batch_size"] = int(batch_size)
        return DataLoader(
            ds,
            shuffle=shuffle,
            collate_fn=self.collate_fn(training=training),
            worker_init_fn=worker_init_fn,
            drop_last=False,
            generator=torch.Generator().manual_seed(self.seed),
            **kw,
        )

    def augment_on(self) -> str:
        """Where the training video augmentation runs: "cpu" (loader workers) or "gpu" (batched in
        the LightningModule on the training device). `data.augment_on=auto` is "gpu" when the
        attached trainer runs on CUDA, else (no trainer: benchmarks, tools) "cpu"."""
        choice = str(getattr(self.cfg, "augment_on", "auto"))
        if choice not in ("auto", "cpu", "gpu"):
            raise ValueError(f"data.augment_on={choice!r}: use auto, cpu or gpu")
        if choice != "auto":
            return choice
        trainer = getattr(self, "trainer", None)
        on_cuda = trainer is not None and trainer.strategy.root_device.type == "cuda"
        return "gpu" if on_cuda else "cpu"

    def _set_augment_on(self, ds: Dataset) -> None:
        defer = self.augment_on() == "gpu"
        for d in getattr(ds, "datasets", [ds]):  # a MixtureDataset's sources, or the dataset itself
            d.defer_video_augment = defer

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        assert self.train_set is not None
        self._set_augment_on(self.train_set)
        return self._loader(self.train_set, shuffle=True, training=True)

    def val_dataloader(self) -> DataLoader | list:
        self.setup("fit")
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []

    # ------------------------------------------------------------------ metadata for checkpoints
    def metadata(self) -> dict:
        """experiment_cfg/metadata.json entry of this embodiment (stats per key, first source)."""
        self.setup("fit")
        meta, stats = self.metas[0], self.stats[0]
        per_key = key_stats(stats, meta.modality)
        tag = str(self.embodiment.embodiment_tag)
        return {
            tag: {
                "statistics": per_key,
                "modalities": meta.modality.to_json_dict(),
                "embodiment_tag": tag,
            }
        }
