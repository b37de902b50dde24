"""load_meta: reading the demo dataset and clear errors for every broken metadata file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.meta import load_meta


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


def test_v3_tells_to_convert(tmp_path: Path):
    (tmp_path / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (tmp_path / "meta" / "info.json").write_text(
        json.dumps({"codebase_version": "v3.0", "fps": 30, "features": {}})
    )
    with pytest.raises(DatasetError, match=r"codebase_version.*run: python run.py mode=convert"):
        load_meta(tmp_path)


def test_not_a_directory(tmp_path: Path):
    with pytest.raises(DatasetError, match="dataset directory not found"):
        load_meta(tmp_path / "nope")
