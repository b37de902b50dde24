"""load_meta: reading the demo dataset and clear errors for every broken metadata file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.meta import load_meta
from tests.fixtures import shared_path


def test_reads_demo_dataset(pick_place: Path):
    meta = load_meta(pick_place)
    assert meta.version == "v2.0"
    assert meta.fps == 20.0
    assert [e.length for e in meta.episodes] == [416, 470, 470, 412, 328]
    assert meta.tasks[1] == "valid"
    assert meta.modality_source == "file"
    assert meta.modality.state["left_arm"].start == 0 and meta.modality.state["waist"].end == 44
    assert meta.modality.column("video", "ego_view") == "observation.images.ego_view"
    assert meta.stats is not None and len(meta.stats["observation.state"]["mean"]) == 44
    ep = meta.read_episode(4)
    assert ep["observation.state"].shape == (328, 44)
    assert ep["action"].dtype == np.float64
    assert meta.parquet_path(3).name == "episode_000003.parquet"
    assert meta.video_path(2, "observation.images.ego_view").exists()


def test_embodiment_keys_checked(pick_place: Path, gr1_embodiment):
    meta = load_meta(pick_place, gr1_embodiment)
    assert "left_arm" in meta.modality.state
    bad = gr1_embodiment.copy()
    bad.state_keys = ["state.left_arm", "state.tail"]
    with pytest.raises(DatasetError, match=r"state\.tail.*no such key"):
        load_meta(pick_place, bad)


def test_missing_info(pick_place_copy: Path):
    (pick_place_copy / "meta" / "info.json").unlink()
    with pytest.raises(DatasetError, match=r"meta/info.json.*file not found.*Fix: point tools.dataset"):
        load_meta(pick_place_copy)


def test_corrupt_info(pick_place_copy: Path):
    p = pick_place_copy / "meta" / "info.json"
    p.write_text(p.read_text()[:200])
    with pytest.raises(DatasetError, match=r"meta/info.json: not valid JSON .*line \d+.*Fix"):
        load_meta(pick_place_copy)


def test_info_missing_fps(pick_place_copy: Path):
    p = pick_place_copy / "meta" / "info.json"
    info = json.loads(p.read_text())
    del info["fps"]
    p.write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=r"meta/info.json \[fps\]: required key missing"):
        load_meta(pick_place_copy)


def test_corrupt_modality(pick_place_copy: Path):
    p = pick_place_copy / "meta" / "modality.json"
    p.write_text(p.read_text().replace('"end": 7', '"end": 7,,', 1))
    with pytest.raises(DatasetError, match=r"meta/modality.json: not valid JSON.*Fix: fix the JSON syntax"):
        load_meta(pick_place_copy)


def test_modality_typo_field(pick_place_copy: Path):
    p = pick_place_copy / "meta" / "modality.json"
    mod = json.loads(p.read_text())
    mod["state"]["left_arm"] = {"strat": 0, "end": 7}
    p.write_text(json.dumps(mod))
    with pytest.raises(DatasetError) as ei:
        load_meta(pick_place_copy)
    text = str(ei.value)
    assert "state.left_arm.strat" in text and "Extra inputs" in text and "spelling" in text


def test_missing_modality_uses_default(pick_place_copy: Path, caplog):
    (pick_place_copy / "meta" / "modality.json").unlink()
    meta = load_meta(pick_place_copy)
    assert meta.modality_source == "generated"
    assert meta.modality.state["state"].end == 44 and meta.modality.action["action"].end == 44
    assert meta.modality.video["ego_view"].original_key == "observation.images.ego_view"
    assert any("no modality.json" in str(w) for w in meta.warnings)
    assert "no modality.json" in caplog.text


def test_missing_modality_uses_embodiment_layout(pick_place_copy: Path, gr1_embodiment):
    (pick_place_copy / "meta" / "modality.json").unlink()
    meta = load_meta(pick_place_copy, gr1_embodiment)
    assert meta.modality_source == "embodiment"
    assert meta.modality.state["right_hand"].start == 29


def test_missing_episodes_jsonl(pick_place_copy: Path):
    (pick_place_copy / "meta" / "episodes.jsonl").unlink()
    with pytest.raises(
        DatasetError, match=r"meta/episodes.jsonl: file not found.*Fix: write meta/episodes.jsonl"
    ):
        load_meta(pick_place_copy)


def test_corrupt_episodes_line(pick_place_copy: Path):
    p = pick_place_copy / "meta" / "episodes.jsonl"
    lines = p.read_text().splitlines()
    lines[2] = lines[2][:20]
    p.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"meta/episodes.jsonl \[line 3\]: not valid JSON"):
        load_meta(pick_place_copy)


def test_tasks_as_json_array(pick_place_copy: Path):
    p = pick_place_copy / "meta" / "tasks.jsonl"
    rows = [json.loads(x) for x in p.read_text().splitlines()]
    p.write_text(json.dumps(rows))
    with pytest.raises(
        DatasetError, match=r"meta/tasks.jsonl \[line 1\]: found a JSON array.*one object per line"
    ):
        load_meta(pick_place_copy)


def test_truncated_parquet(pick_place_copy: Path):
    meta = load_meta(pick_place_copy)
    p = meta.parquet_path(2)
    p.write_bytes(p.read_bytes()[:1000])
    meta = load_meta(pick_place_copy)  # footer of episode 0 is fine: loading works
    with pytest.raises(
        DatasetError, match=r"episode_000002.parquet \[episode 2\]: cannot read parquet \(truncated"
    ):
        meta.read_episode(2)


def test_truncated_first_parquet_fails_load(pick_place_copy: Path):
    p = pick_place_copy / "data" / "chunk-000" / "episode_000000.parquet"
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(DatasetError, match=r"episode_000000.parquet.*truncated or corrupt"):
        load_meta(pick_place_copy)


def test_missing_parquet_and_video(pick_place_copy: Path):
    (pick_place_copy / "data" / "chunk-000" / "episode_000001.parquet").unlink()
    (pick_place_copy / "videos" / "chunk-000" / "observation.images.ego_view" / "episode_000003.mp4").unlink()
    with pytest.raises(DatasetError) as ei:
        load_meta(pick_place_copy)
    text = str(ei.value)
    assert (
        "episode_000001.parquet" in text
        and "parquet file(s) listed in meta/episodes.jsonl are missing" in text
    )
    assert "[video.ego_view]: 1 video file(s) missing" in text and "episode_000003.mp4" in text


def test_v3_without_episode_index_names_the_folder(tmp_path: Path):
    (tmp_path / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (tmp_path / "meta" / "info.json").write_text(
        json.dumps({"codebase_version": "v3.0", "fps": 30, "features": {}})
    )
    with pytest.raises(
        DatasetError, match=r"meta/episodes/: no episode metadata parquet files.*Fix: restore"
    ):
        load_meta(tmp_path)


@pytest.mark.parametrize("name", ["lerobot_v30_h264", "lerobot_v30_av1"])
def test_reads_lerobot_v30_in_place(name: str, hash_tree):
    root = shared_path("datasets", name)
    before = hash_tree(root)
    meta = load_meta(root)
    assert meta.version == "v3.0" and meta.is_v3 and meta.fps == 15.0
    assert [e.length for e in meta.episodes] == [30, 41, 25, 36]
    assert meta.tasks == {0: "pick up the red cube", 1: "push the blue block left"}
    assert meta.episodes[1].tasks == ["push the blue block left"]
    # no modality.json (LeRobot writes none): the derived layout, said so
    assert meta.modality_source == "generated"
    assert any(
        i.check == "modality.missing" and "derived from the dataset" in i.message for i in meta.warnings
    )
    assert set(meta.modality.video) == {"cam_high", "cam_wrist"}
    cam = "observation.images.cam_high"
    assert meta.parquet_path(2).name == "file-000.parquet" and meta.video_path(2, cam).name == "file-000.mp4"
    assert meta.video_span(1, cam) == pytest.approx((2.0, 41 / 15 + 2.0))
    # each episode's rows come out of the shared file, checked by episode_index
    ep = meta.read_episode(2, ["observation.state", "timestamp"])
    assert set(ep) == {"observation.state", "timestamp"}
    assert ep["observation.state"].shape == (25, 8) and ep["timestamp"][0] == 0.0
    assert meta.read_episode(3)["episode_index"].tolist() == [3] * 36
    assert hash_tree(root) == before


def test_v30_matches_its_v21_twin():
    """Same content written by LeRobot as v2.1 and v3.0: same rows per episode."""
    v3 = load_meta(shared_path("datasets", "lerobot_v30_av1"))
    v2 = load_meta(shared_path("datasets", "lerobot_v21_av1"))
    assert v2.version == "v2.1" and v2.video_span(0, "observation.images.cam_high") is None
    for e in v2.episodes:
        a, b = v3.read_episode(e.index), v2.read_episode(e.index)
        np.testing.assert_array_equal(a["observation.state"], b["observation.state"])
        np.testing.assert_array_equal(a["action"], b["action"])


def test_v30_stale_episode_rows_named(tmp_path: Path):
    """meta/episodes pointing at another episode's rows is an error naming file and episode."""
    import pyarrow.parquet as pq

    src = shared_path("datasets", "lerobot_v30_h264")
    root = tmp_path / "ds"
    shutil.copytree(src, root)
    p = root / "meta/episodes/chunk-000/file-000.parquet"
    t = pq.read_table(p)
    i = t.column_names.index("dataset_from_index")
    t = t.set_column(i, "dataset_from_index", pa.array([0, 25, 71, 96], pa.int64()))
    pq.write_table(t, p)
    meta = load_meta(root)
    with pytest.raises(
        DatasetError, match=r"data/chunk-000/file-000.parquet \[episode 1\]: rows 25-66.*episode\(s\) \[0\]"
    ):
        meta.read_episode(1)


def test_a_file_is_not_a_dataset(pick_place: Path):
    with pytest.raises(
        DatasetError, match=r"this is a file, not a dataset directory.*e\.g\. .*robot_sim\.PickNPlace"
    ):
        load_meta(pick_place / "meta" / "info.json")


def test_not_a_directory(tmp_path: Path):
    with pytest.raises(DatasetError, match="dataset directory not found"):
        load_meta(tmp_path / "nope")


def test_discrete_dtype_needs_binary_normalisation(pick_place_copy: Path, gr1_embodiment):
    p = pick_place_copy / "meta" / "modality.json"
    mod = json.loads(p.read_text())
    mod["state"]["left_hand"]["dtype"] = "int64"
    p.write_text(json.dumps(mod))
    with pytest.raises(
        DatasetError, match=r"\[state.left_hand\]: dtype 'int64' \(not a float\) is discrete.*binary"
    ):
        load_meta(pick_place_copy, gr1_embodiment)
