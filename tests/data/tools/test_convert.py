"""Conversion both ways for every dataset we have (h264 and AV1, v2.0 / v2.1 / v3.0): converted and
back compares equal (parquet values, decoded frames, tasks), the outputs have the layout LeRobot
reads, a failed run leaves nothing behind, and the source is never modified."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.mp4 import sampled_frames
from gr00t_exp.data.tools import convert as convert_mod
from gr00t_exp.data.tools.convert import convert, frames_equal
from gr00t_exp.data.tools.validate import validate_dataset
from gr00t_exp.data.v3_index import read_v3_tasks
from tests.fixtures import shared_path

STEP = 7  # compare every 7th decoded frame (all are decoded): keeps the 2-core CI fast
STAT_KEYS = {"min", "max", "mean", "std", "count"}


# -- layout LeRobot reads ----------------------------------------------------------------------


def _info(root: Path) -> dict:
    return json.loads((root / "meta/info.json").read_text())


def _video_keys(root: Path) -> list[str]:
    return [k for k, f in _info(root)["features"].items() if f["dtype"] == "video"]


def _v3_episodes(root: Path) -> list[dict]:
    files = sorted((root / "meta/episodes").rglob("*.parquet"))
    rows = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()
    return sorted(rows, key=lambda r: r["episode_index"])


def _assert_v3_layout(root: Path) -> None:
    """tasks.parquet exactly as LeRobot v3.0 lays it out; every video feature has its spans and files."""
    ref = pq.read_table(shared_path("datasets", "lerobot_v30_h264", "meta", "tasks.parquet"))
    ours = pq.read_table(root / "meta/tasks.parquet")
    assert ours.schema.remove_metadata() == ref.schema.remove_metadata()
    ref_pd, ours_pd = (json.loads(t.schema.metadata[b"pandas"]) for t in (ref, ours))
    for key in ("index_columns", "column_indexes", "columns"):
        assert ours_pd[key] == ref_pd[key]
    info = _info(root)
    assert info["codebase_version"] == "v3.0"
    for ep in _v3_episodes(root):
        for key in _video_keys(root):
            assert ep[f"videos/{key}/from_timestamp"] is not None, (key, ep["episode_index"])
            rel = info["video_path"].format(
                video_key=key,
                chunk_index=ep[f"videos/{key}/chunk_index"],
                file_index=ep[f"videos/{key}/file_index"],
            )
            assert (root / rel).exists()


def _assert_v21_layout(root: Path) -> None:
    """episodes_stats.jsonl for every episode (LeRobot 0.3 needs it) and a file for every video feature."""
    meta = load_meta(root, check_embodiment=False)
    assert meta.version == "v2.1"
    stats = meta.episodes_stats
    assert stats is not None and set(stats) == set(meta.episode_indices)
    for ep in meta.episodes:
        non_video = [k for k, f in meta.info["features"].items() if f["dtype"] != "video"]
        assert all(STAT_KEYS <= set(stats[ep.index][k]) for k in non_video)
        for key in _video_keys(root):
            assert meta.video_path(ep.index, key).exists()


# -- v2 sources: v2 -> v3.0 -> v2.1 -------------------------------------------------------------


def _v2_round_trip(src: Path, tmp_path: Path, hash_tree) -> tuple[Path, Path]:
    before = hash_tree(src)
    v3 = convert(src, tmp_path / "v3", "v3.0")
    v2 = convert(v3, tmp_path / "v2", "v2.1")
    assert hash_tree(src) == before, "the converter modified its source"
    _assert_v3_layout(v3)
    _assert_v21_layout(v2)
    a, b = load_meta(src, check_embodiment=False), load_meta(v2, check_embodiment=False)
    assert [(e.index, e.length, e.tasks) for e in a.episodes] == [
        (e.index, e.length, e.tasks) for e in b.episodes
    ]
    assert a.tasks == b.tasks and read_v3_tasks(v3) == a.tasks
    if a.episodes_stats is not None:
        assert b.episodes_stats == a.episodes_stats
    keys = _video_keys(v2)
    assert keys == [k for k in _video_keys(src) if a.video_path(0, k).exists()]
    for e in a.episodes:
        assert pq.read_table(a.parquet_path(e.index)).equals(pq.read_table(b.parquet_path(e.index)))
        for key in keys:
            assert frames_equal(a.video_path(e.index, key), b.video_path(e.index, key), step=STEP)
    return v3, v2


def test_round_trip_synthetic(synthetic_dataset: Path, tmp_path: Path, hash_tree):
    v3, v2 = _v2_round_trip(synthetic_dataset, tmp_path, hash_tree)
    assert len(list((v3 / "data").rglob("*.parquet"))) == 1  # many episodes per file
    assert load_meta(v2).modality == load_meta(synthetic_dataset).modality
    assert validate_dataset(v2).errors == []


def test_round_trip_pick_place_v20_drops_fileless_video(pick_place: Path, tmp_path: Path, hash_tree):
    assert "observation.images.egoview" in _info(pick_place)["features"]  # listed, but no files
    v3, v2 = _v2_round_trip(pick_place, tmp_path, hash_tree)
    for out in (v3, v2):
        assert _video_keys(out) == ["observation.images.ego_view"]
    assert not any(c.startswith("videos/observation.images.egoview/") for c in _v3_episodes(v3)[0])


def test_round_trip_lerobot_v21_av1(tmp_path: Path, hash_tree):
    _v2_round_trip(shared_path("datasets", "lerobot_v21_av1"), tmp_path, hash_tree)


# -- v3 sources: v3.0 -> v2.1 -> v3.0 -----------------------------------------------------------


def _data(root: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in sorted((root / "data").rglob("*.parquet"))])


@pytest.mark.parametrize("name", ["lerobot_v30_h264", "lerobot_v30_av1"])
def test_round_trip_lerobot_v30(name: str, tmp_path: Path, hash_tree):
    src = shared_path("datasets", name)
    before = hash_tree(src)
    v2 = convert(src, tmp_path / "v2", "v2.1")
    v3 = convert(v2, tmp_path / "v3", "v3.0")
    assert hash_tree(src) == before, "the converter modified its source"
    _assert_v21_layout(v2)
    _assert_v3_layout(v3)
    assert _data(v3).equals(_data(src))
    assert read_v3_tasks(v3) == read_v3_tasks(src)
    src_eps, out_eps = _v3_episodes(src), _v3_episodes(v3)
    assert [e.keys() for e in out_eps] == [e.keys() for e in src_eps]  # statistics columns kept too
    for e_src, e_out in zip(src_eps, out_eps, strict=True):
        for col, value in e_src.items():
            if col.endswith("_timestamp"):
                assert e_out[col] == pytest.approx(value, abs=1e-9), col
            else:
                assert e_out[col] == value, col
    v2_meta = load_meta(v2, check_embodiment=False)
    info = _info(src)
    for e in src_eps:
        for key in _video_keys(src):
            span = (e[f"videos/{key}/from_timestamp"], e[f"videos/{key}/to_timestamp"])
            rel = info["video_path"].format(video_key=key, chunk_index=0, file_index=0)
            n, frames = sampled_frames(src / rel, *span, step=STEP)
            assert n == e["length"]
            for out_file, out_span in ((v2_meta.video_path(e["episode_index"], key), ()), (v3 / rel, span)):
                n_out, out_frames = sampled_frames(out_file, *out_span, step=STEP)
                assert n_out == n and all((x == y).all() for x, y in zip(frames, out_frames, strict=True))


def test_v30_to_v21_matches_lerobot_v21(tmp_path: Path):
    """Same content written by LeRobot 0.4 (v3.0) and 0.3 (v2.1): our v2.1 has LeRobot 0.3's files,
    parquet values and episode/task lists."""
    ref = shared_path("datasets", "lerobot_v21_av1")
    out = convert(shared_path("datasets", "lerobot_v30_av1"), tmp_path / "v2", "v2.1")
    files = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert {p.relative_to(ref) for p in ref.rglob("*") if p.is_file()} <= files
    for rel in (p.relative_to(ref) for p in (ref / "data").rglob("*.parquet")):
        assert pq.read_table(out / rel).equals(pq.read_table(ref / rel))
    for rel in ("meta/episodes.jsonl", "meta/tasks.jsonl"):
        assert (out / rel).read_text() == (ref / rel).read_text()
    assert _info(out)["features"] == _info(ref)["features"]


# -- failures ----------------------------------------------------------------------------------


def test_failed_conversion_leaves_nothing_and_retry_works(
    synthetic_dataset: Path, tmp_path: Path, monkeypatch
):
    def broken(sources, dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"half a file")
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(convert_mod, "concat_videos", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            convert(synthetic_dataset, tmp_path / "v3", "v3.0")
    assert list(tmp_path.iterdir()) == []  # no destination, no temp folder
    v3 = convert(synthetic_dataset, tmp_path / "v3", "v3.0")
    assert [p.name for p in tmp_path.iterdir()] == ["v3"]
    _assert_v3_layout(v3)


def test_refuses_existing_output_and_same_version(synthetic_dataset: Path, tmp_path: Path, hash_tree):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    before = hash_tree(tmp_path / "out")
    with pytest.raises(FileExistsError, match="not empty"):
        convert(synthetic_dataset, tmp_path / "out", "v3.0")
    assert hash_tree(tmp_path / "out") == before
    with pytest.raises(ValueError, match="already v2.1"):
        convert(synthetic_dataset, tmp_path / "o2", "v2.1")
    with pytest.raises(ValueError, match="outside the source"):
        convert(synthetic_dataset, synthetic_dataset / "out", "v3.0")


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
