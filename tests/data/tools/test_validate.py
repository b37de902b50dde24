"""mode=validate: every bad-input case shows up in the report with its text; run.py exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gr00t_exp.data.tools.validate import probe_video, validate_dataset, write_report


def _texts(report, severity="error"):
    return [str(i) for i in report.issues if i.severity == severity]


def _rewrite_parquet(path: Path, fn) -> None:
    table = pq.read_table(path)
    cols = {n: table.column(n).to_pylist() for n in table.column_names}
    fn(cols)
    pq.write_table(pa.table(cols, schema=table.schema), path)


def test_demo_dataset_is_healthy(pick_place: Path, tmp_path: Path, hash_tree):
    before = hash_tree(pick_place)
    report = validate_dataset(pick_place)
    assert report.errors == []
    checks = {i.check for i in report.warnings}
    # the demo's known quirks: unused egoview feature, constant leg/neck/waist dims, 0.05 s offset
    assert {"info.feature_files", "data.constant", "timestamp.offset"} <= checks
    md, js = write_report(report, tmp_path / "run")
    assert "**OK**: 0 error(s)" in md.read_text()
    assert json.loads(js.read_text())["summary"]["frames"] == 2096
    assert hash_tree(pick_place) == before


def test_synthetic_dataset_is_clean(synthetic_dataset: Path):
    report = validate_dataset(synthetic_dataset, full_decode=True)
    assert report.issues == []


def test_probe_counts_frames(synthetic_dataset: Path):
    p = probe_video(
        synthetic_dataset / "videos/chunk-000/observation.images.ego_view/episode_000000.mp4", True
    )
    assert p.codec == "h264" and (p.height, p.width) == (64, 64) and p.fps == 20
    assert p.frames == p.decoded and p.keyframes >= 1


def test_missing_and_undecodable_mp4(synthetic_copy: Path):
    vdir = synthetic_copy / "videos/chunk-000/observation.images.ego_view"
    (vdir / "episode_000001.mp4").unlink()
    (vdir / "episode_000002.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    report = validate_dataset(synthetic_copy)
    errs = "\n".join(_texts(report))
    assert (
        "[video.ego_view]: 1 video file(s) missing: videos/chunk-000/observation.images.ego_view/episode_000001.mp4"
        in errs
    )
    assert "episode_000002.mp4 [video.ego_view]: cannot decode" in errs and "re-encode the file" in errs


def test_truncated_mp4_frame_count(synthetic_copy: Path):
    from gr00t_exp.data.mp4 import encode_mp4

    path = synthetic_copy / "videos/chunk-000/observation.images.ego_view/episode_000000.mp4"
    encode_mp4(path, np.zeros((10, 64, 64, 3), np.uint8), 20)
    errs = "\n".join(_texts(validate_dataset(synthetic_copy)))
    assert "10 frames but the parquet has" in errs
    assert "is after the end of the video (0.5 s)" in errs


def test_fps_mismatch(synthetic_copy: Path):
    p = synthetic_copy / "meta/info.json"
    info = json.loads(p.read_text())
    info["fps"] = 30
    p.write_text(json.dumps(info))
    errs = "\n".join(_texts(validate_dataset(synthetic_copy)))
    assert "fps mismatch: timestamps advance by 0.05 s (20 fps) but info.json fps is 30" in errs
    assert "fps mismatch: video is 20 fps but info.json fps is 30" in errs


def test_nan_and_timestamp_problems(synthetic_copy: Path):
    path = synthetic_copy / "data/chunk-000/episode_000001.parquet"

    def corrupt(cols):
        cols["action"][3][2] = float("nan")
        cols["timestamp"][5] = cols["timestamp"][4]

    _rewrite_parquet(path, corrupt)
    path2 = synthetic_copy / "data/chunk-000/episode_000002.parquet"

    def gap(cols):
        cols["timestamp"] = [t + (0.5 if i >= 10 else 0.0) for i, t in enumerate(cols["timestamp"])]

    _rewrite_parquet(path2, gap)
    errs = "\n".join(_texts(validate_dataset(synthetic_copy)))
    assert "episode_000001.parquet [action]: 1 NaN/inf value(s) in episode 1 (first at row 3)" in errs
    assert "duplicate/decreasing timestamp(s) in episode 1 (first at row 5)" in errs
    assert "1 gap(s) longer than 1.5 frames in episode 2 (first after row 9: 0.55 s)" in errs


def test_wrong_dims(synthetic_copy: Path):
    p = synthetic_copy / "meta/info.json"
    info = json.loads(p.read_text())
    info["features"]["observation.state"]["shape"] = [40]
    p.write_text(json.dumps(info))
    errs = "\n".join(_texts(validate_dataset(synthetic_copy)))
    assert "[state.waist]: slice 41:44 exceeds the width 40 of 'observation.state'" in errs
    assert "[observation.state]: rows have 44 values but info.json declares shape [40]" in errs


def test_episode_length_and_task_mismatch(synthetic_copy: Path):
    p = synthetic_copy / "meta/episodes.jsonl"
    rows = [json.loads(x) for x in p.read_text().splitlines()]
    rows[0]["length"] += 3
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = synthetic_copy / "meta/tasks.jsonl"
    t.write_text("\n".join(t.read_text().splitlines()[:1]) + "\n")
    report = validate_dataset(synthetic_copy)
    errs = "\n".join(_texts(report))
    assert "rows but meta/episodes.jsonl says length" in errs
    assert "is not in meta/tasks.jsonl" in errs


def test_fatal_metadata_error_is_reported(synthetic_copy: Path):
    (synthetic_copy / "meta/info.json").write_text("{")
    report = validate_dataset(synthetic_copy)
    assert len(report.errors) == 1 and "meta/info.json: not valid JSON" in str(report.errors[0])


def test_run_py_validate_exit_codes(
    pick_place: Path, synthetic_copy: Path, tmp_path: Path, run_cli, hash_tree
):
    before = hash_tree(pick_place)
    ok = run_cli(["mode=validate", "data=pick_place"], tmp_path / "a")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 error(s)" in ok.stdout
    assert (tmp_path / "a/dataset_report.md").exists() and (tmp_path / "a/dataset_report.json").exists()
    strict = run_cli(["mode=validate", "data=pick_place", "tools.fail_on_warning=true"], tmp_path / "b")
    assert strict.returncode == 1
    assert hash_tree(pick_place) == before
    (synthetic_copy / "videos/chunk-000/observation.images.ego_view/episode_000003.mp4").unlink()
    bad = run_cli(["mode=validate", f"tools.dataset={synthetic_copy}"], tmp_path / "c")
    assert bad.returncode == 1 and "episode_000003.mp4" in bad.stdout


@pytest.mark.parametrize("in_place", [False, True])
def test_run_py_stats(synthetic_copy: Path, tmp_path: Path, in_place: bool, run_cli, hash_tree):
    stats_file = synthetic_copy / "meta/stats.json"
    old = stats_file.read_text()
    stats_file.unlink()
    before = hash_tree(synthetic_copy)
    r = run_cli(
        ["mode=stats", f"tools.dataset={synthetic_copy}", f"data.write_in_place={str(in_place).lower()}"],
        tmp_path / "run",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    if in_place:
        assert json.loads(stats_file.read_text()).keys() == json.loads(old).keys()
        assert (synthetic_copy / "meta/relative_stats.json").exists()
    else:
        assert hash_tree(synthetic_copy) == before
        out = json.loads((tmp_path / "run/stats.json").read_text())
        np.testing.assert_allclose(out["action"]["mean"], json.loads(old)["action"]["mean"])
        assert "action.left_arm" in json.loads((tmp_path / "run/relative_stats.json").read_text())


def test_run_py_stats_pick_place_read_only(pick_place: Path, tmp_path: Path, run_cli, hash_tree):
    before = hash_tree(pick_place)
    r = run_cli(["mode=stats", "data=pick_place"], tmp_path / "run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "run/stats.json").exists()
    assert hash_tree(pick_place) == before


def test_run_py_stats_bad_dataset(tmp_path: Path, run_cli):
    r = run_cli(["mode=stats", f"tools.dataset={tmp_path / 'missing'}"], tmp_path / "run")
    assert r.returncode == 1 and "dataset directory not found" in r.stdout
