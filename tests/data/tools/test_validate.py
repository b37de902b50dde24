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
from tests.fixtures import shared_path


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


# -- LeRobot-written datasets (v3.0 read in place, v2.1), no modality.json --------------------


@pytest.mark.parametrize("name", ["lerobot_v30_h264", "lerobot_v30_av1", "lerobot_v21_av1"])
def test_lerobot_datasets_validate_clean_without_embodiment(name: str, hash_tree):
    root = shared_path("datasets", name)
    before = hash_tree(root)
    report = validate_dataset(root)
    assert report.errors == [], _texts(report)
    assert "derived from the dataset" in report.summary["layout checked"]
    codec = "h264" if "h264" in name else "av1"
    # the canonical codec name, not the decoder's (libdav1d): no false "fix", and AV1 is flagged slow
    assert report.summary["video codecs"] == [codec]
    assert not [i for i in report.issues if i.check == "video.codec"]
    assert any(i.check == "video.codec_slow" for i in report.warnings) == (codec == "av1")
    assert hash_tree(root) == before


def test_embodiment_keys_checked_when_given(pick_place: Path, gr1_embodiment):
    # a key the dataset's modality.json lacks used to pass validate and fail only at training
    bad = gr1_embodiment.copy()
    bad.state_keys = ["state.left_arm", "state.tail"]
    report = validate_dataset(pick_place, bad)
    (err,) = [i for i in report.errors if i.check == "embodiment.key"]
    assert "state.tail" in str(err) and "no such key" in str(err)
    assert "keys of embodiment=gr1_arms_only checked" in report.summary["layout checked"]
    # a dataset without modality.json is read with the given embodiment's layout, which must fit
    report = validate_dataset(shared_path("datasets", "lerobot_v30_h264"), gr1_embodiment)
    assert report.summary["modality"] == "embodiment" and report.errors


def test_v3_broken_copy(tmp_path: Path):
    """v3.0: a truncated shared mp4 and rows no episode claims are errors naming the file."""
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(shared_path("datasets", "lerobot_v30_h264"), root)
    mp4 = root / "videos/observation.images.cam_wrist/chunk-000/file-000.mp4"
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    p = root / "meta/episodes/chunk-000/file-000.parquet"
    t = pq.read_table(p)
    t = t.set_column(t.column_names.index("length"), "length", pa.array([30, 41, 25, 20], pa.int64()))
    pq.write_table(t, p)
    texts = _texts(validate_dataset(root))
    assert any("file-000.mp4 [video.cam_wrist]: cannot decode" in e for e in texts), texts
    assert any(
        "data/chunk-000/file-000.parquet: 132 rows but the episodes" in e and "16 rows would never" in e
        for e in texts
    ), texts
