"""Lossless v2 -> v3 -> v2 conversion: identical parquet tables and decoded frames."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.tools.convert import convert, cut_video, frames_equal
from gr00t_exp.data.tools.validate import validate_dataset


def _round_trip(src: Path, tmp_path: Path) -> tuple[Path, Path]:
    v3 = convert(src, tmp_path / "v3", "v3.0")
    v2 = convert(v3, tmp_path / "v2", "v2.1")
    return v3, v2


def _assert_same(a_root: Path, b_root: Path):
    a, b = load_meta(a_root), load_meta(b_root)
    assert b.version == "v2.1"
    assert [(e.index, e.length, e.tasks) for e in a.episodes] == [
        (e.index, e.length, e.tasks) for e in b.episodes
    ]
    assert a.tasks == b.tasks and a.modality == b.modality
    for e in a.episodes:
        assert pq.read_table(a.parquet_path(e.index)).equals(pq.read_table(b.parquet_path(e.index)))
        for v in a.modality.video.values():
            assert frames_equal(a.video_path(e.index, v.original_key), b.video_path(e.index, v.original_key))


def test_round_trip_synthetic(synthetic_dataset: Path, tmp_path: Path, hash_tree):
    before = hash_tree(synthetic_dataset)
    v3, v2 = _round_trip(synthetic_dataset, tmp_path)
    assert json.loads((v3 / "meta/info.json").read_text())["codebase_version"] == "v3.0"
    assert len(list((v3 / "data").rglob("*.parquet"))) == 1  # many episodes per file
    with pytest.raises(DatasetError, match="mode=convert"):
        load_meta(v3)
    _assert_same(synthetic_dataset, v2)
    assert validate_dataset(v2).errors == []
    assert hash_tree(synthetic_dataset) == before


def test_round_trip_demo_read_only(pick_place: Path, tmp_path: Path, hash_tree):
    before = hash_tree(pick_place)
    _, v2 = _round_trip(pick_place, tmp_path)
    _assert_same(pick_place, v2)
    assert hash_tree(pick_place) == before


def test_cut_off_key_frame_reencodes_losslessly(synthetic_dataset: Path, tmp_path: Path):
    src = synthetic_dataset / "videos/chunk-000/observation.images.ego_view/episode_000000.mp4"
    with av.open(str(src)) as c:
        frames = [f.to_ndarray() for f in c.decode(video=0)]  # raw yuv420p planes
    how = cut_video(src, tmp_path / "cut.mp4", 5 / 20, 15 / 20)  # frame 5 is not a key frame
    assert how == "reencode"
    with av.open(str(tmp_path / "cut.mp4")) as c:
        cut = [f.to_ndarray() for f in c.decode(video=0)]
    assert len(cut) == 10 and all(np.array_equal(x, y) for x, y in zip(cut, frames[5:15], strict=True))
    assert cut_video(src, tmp_path / "head.mp4", 0.0, 10 / 20) == "remux"


def test_refuses_existing_output_and_same_version(synthetic_dataset: Path, tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        convert(synthetic_dataset, tmp_path / "out", "v3.0")
    with pytest.raises(ValueError, match="already v2.1"):
        convert(synthetic_dataset, tmp_path / "o2", "v2.1")


def test_mode_convert(synthetic_dataset: Path, tmp_path: Path, run_cli):
    out = tmp_path / "v3"
    r = run_cli(
        [
            "mode=convert",
            f"tools.dataset={synthetic_dataset}",
            f"tools.output={out}",
            "tools.target_version=v3.0",
        ],
        tmp_path / "run",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "meta/episodes/chunk-000/file-000.parquet").exists()
    r2 = run_cli(["mode=convert", f"tools.dataset={synthetic_dataset}"], tmp_path / "run2")
    assert r2.returncode == 1 and "tools.output" in r2.stdout
