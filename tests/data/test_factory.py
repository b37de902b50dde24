"""Every `data.*` field reaches the object it configures (gr00t_exp/data/factory.py)."""

from __future__ import annotations

import inspect
from dataclasses import fields
from types import SimpleNamespace

import pytest
from torch.utils.data import DataLoader

from gr00t_exp.config.compose import compose_config
from gr00t_exp.data.config import DataConfig, VideoTransformConfig
from gr00t_exp.data.datamodule import Gr00tDataModule
from gr00t_exp.data.dataset import Gr00tDataset, MixtureDataset
from gr00t_exp.data.factory import (
    DATASET_FIELDS,
    LOADER_FIELDS,
    MIXTURE_FIELDS,
    OWN_FIELDS,
    make_dataset,
    split_episodes,
)
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.stats import load_or_compute_stats
from gr00t_exp.data.transforms import VideoTransform


def _params(obj: type) -> set[str]:
    return set(inspect.signature(obj).parameters)


def test_the_field_tables_cover_every_data_field_once():
    tables = [DATASET_FIELDS, LOADER_FIELDS, MIXTURE_FIELDS, OWN_FIELDS]
    listed = [name for table in tables for name in table]
    assert sorted(listed) == sorted(f.name for f in fields(DataConfig)), "each DataConfig field in one table"


@pytest.mark.parametrize(
    ("table", "target"),
    [(DATASET_FIELDS, Gr00tDataset), (LOADER_FIELDS, DataLoader), (MIXTURE_FIELDS, MixtureDataset)],
    ids=["dataset", "loader", "mixture"],
)
def test_each_table_names_keywords_of_its_object(table, target):
    assert set(table) <= _params(target), sorted(set(table) - _params(target))


def test_a_dataset_field_not_in_the_table_would_be_a_dataset_keyword_dropped():
    # A DataConfig field named like a Gr00tDataset keyword must be passed to it.
    shared = {f.name for f in fields(DataConfig)} & _params(Gr00tDataset)
    assert shared == set(DATASET_FIELDS)


def test_make_dataset_passes_every_configured_value(synthetic_dataset, gr1_embodiment, tmp_path):
    cfg = compose_config(
        ["data.align_timestamps=false", "data.timestamp_tolerance_s=0.01", "data.video_backend=pyav"]
    ).data
    meta = load_meta(synthetic_dataset, gr1_embodiment)
    stats = load_or_compute_stats(meta, tmp_path)
    ds = make_dataset(cfg, meta, gr1_embodiment, stats, episodes=[0], training=False, frame_cache=None)
    assert (ds.align, ds.tolerance, ds.video_backend) == (False, 0.01, "pyav")
    with pytest.raises(TypeError, match="batch_size"):
        make_dataset(
            cfg, meta, gr1_embodiment, stats, episodes=[0], training=False, frame_cache=None, batch_size=2
        )


def test_the_datamodule_loader_gets_every_loader_field():
    cfg = compose_config(
        ["data.batch_size=3", "data.num_workers=2", "data.persistent_workers=false", "data.prefetch_factor=5"]
    )
    kw = Gr00tDataModule.from_config(cfg, processor=object()).loader_kwargs()
    assert (kw["batch_size"], kw["num_workers"], kw["persistent_workers"], kw["prefetch_factor"]) == (
        3,
        2,
        False,
        5,
    )
    assert set(kw) == set(LOADER_FIELDS)
    # Without workers DataLoader refuses the worker-only options: they are left out, not mis-set.
    kw0 = Gr00tDataModule.from_config(
        compose_config(["data.num_workers=0"]), processor=object()
    ).loader_kwargs()
    assert set(kw0) == set(LOADER_FIELDS) - {"persistent_workers", "prefetch_factor"}


def _meta(n: int) -> SimpleNamespace:
    return SimpleNamespace(root="/data/x", episodes=[SimpleNamespace(index=i) for i in range(n)])


def test_split_holds_out_the_last_val_episodes():
    cfg = SimpleNamespace(val_episodes=2)
    assert split_episodes(cfg, _meta(5)) == ([0, 1, 2], [3, 4])
    assert split_episodes(SimpleNamespace(val_episodes=0), _meta(3)) == ([0, 1, 2], [])
    with pytest.raises(ValueError, match=r"data.val_episodes=3 leaves no training episodes.*below 3"):
        split_episodes(SimpleNamespace(val_episodes=3), _meta(3))


def test_video_transform_takes_exactly_the_config_fields():
    cfg = VideoTransformConfig(
        crop_scale=0.8, resize=96, brightness=0.1, contrast=0.2, saturation=0.3, hue=0.04
    )
    vt = VideoTransform.from_config(cfg, training=False)
    for f in fields(VideoTransformConfig):
        assert getattr(vt, f.name) == getattr(cfg, f.name), f.name
    assert vt.training is False
