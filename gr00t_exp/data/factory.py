"""The objects a `data` config configures, built in one place so no configured field is dropped.

Training (the DataModule), mode=eval and mode=bench all build their datasets, frame caches and
episode splits here. The tables below say which object each `DataConfig` field configures; the
fields of a table are passed under their own name, so they must be keywords of that object
(tests/data/test_factory.py checks that the tables cover every DataConfig field and match the
constructors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gr00t_exp.data.dataset import Gr00tDataset
from gr00t_exp.data.meta import DatasetMeta
from gr00t_exp.data.video import FrameCache, resolve_backend

# Gr00tDataset keywords.
DATASET_FIELDS: tuple[str, ...] = ("video_backend", "timestamp_tolerance_s", "align_timestamps")
# torch DataLoader keywords (Gr00tDataModule.loader_kwargs).
LOADER_FIELDS: tuple[str, ...] = (
    "batch_size",
    "num_workers",
    "pin_memory",
    "persistent_workers",
    "prefetch_factor",
)
# MixtureDataset keywords (several data.sources).
MIXTURE_FIELDS: tuple[str, ...] = ("balance_dataset_weights", "balance_trajectory_weights")
# Read by the DataModule itself (which dataset, the split, the frame cache) and by mode=stats.
OWN_FIELDS: tuple[str, ...] = (
    "kind",
    "sources",
    "synthetic",
    "cache",
    "val_episodes",
    "write_in_place",
    "augment_on",
)


def dataset_kwargs(data_cfg: Any) -> dict[str, Any]:
    """The DATASET_FIELDS of `data_cfg` as Gr00tDataset keywords ("auto" backend resolved once here)."""
    kwargs = {name: getattr(data_cfg, name) for name in DATASET_FIELDS}
    kwargs["video_backend"] = resolve_backend(str(kwargs["video_backend"]))
    return kwargs


def make_dataset(
    data_cfg: Any,
    meta: DatasetMeta,
    embodiment: Any,
    stats: Mapping | None,
    *,
    episodes: Sequence[int],
    training: bool,
    frame_cache: FrameCache | None,
    **overrides: Any,
) -> Gr00tDataset:
    """A Gr00tDataset with every DATASET_FIELDS value of `data_cfg`; `overrides` replace some of
    them on purpose (the dataloader benchmark compares backends)."""
    unknown = set(overrides) - set(DATASET_FIELDS)
    if unknown:
        raise TypeError(f"make_dataset: {sorted(unknown)} are not data config fields of the dataset")
    kwargs = {**dataset_kwargs(data_cfg), **overrides}
    return Gr00tDataset(
        meta, embodiment, stats, episodes=list(episodes), training=training, frame_cache=frame_cache, **kwargs
    )


def make_frame_cache(data_cfg: Any) -> FrameCache | None:
    """The decoded-frame cache of `data.cache` (None when disabled)."""
    c = data_cfg.cache
    if not c.enabled:
        return None
    return FrameCache(c.dir, c.height, c.width, backend=resolve_backend(str(data_cfg.video_backend)))


def split_episodes(data_cfg: Any, meta: DatasetMeta) -> tuple[list[int], list[int]]:
    """(training, held-out) episode indices of one source: the last `data.val_episodes` are held out."""
    n_val = int(data_cfg.val_episodes)
    eps = [e.index for e in meta.episodes]
    if n_val < 0:
        raise ValueError(f"data.val_episodes={n_val} must be >= 0")
    if n_val >= len(eps):
        raise ValueError(
            f"data.val_episodes={n_val} leaves no training episodes in {meta.root} ({len(eps)} episodes); "
            f"set data.val_episodes below {len(eps)}"
        )
    split = len(eps) - n_val
    return eps[:split], eps[split:]
