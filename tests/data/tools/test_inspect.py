"""mode=inspect: summary, raw sample shapes, PNGs; never writes into the dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gr00t_exp.data import factory
from gr00t_exp.data.config import DataConfig, EmbodimentConfig
from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.tools.derive import derive_embodiment
from gr00t_exp.data.tools.inspect import inspect_dataset, raw_sample, read_frames
from tests.fixtures import shared_path


def test_inspect_synthetic(synthetic_dataset: Path, tmp_path: Path, hash_tree, gr1_embodiment):
    before = hash_tree(synthetic_dataset)
    res = inspect_dataset(synthetic_dataset, tmp_path, episode=1, embodiment=gr1_embodiment)
    if res["transformed_sample_status"] == "ok":  # the data-pipeline's dataset is present
        assert res["transformed_sample"]["state"] == "float32 (1, 64)"
        assert res["transformed_sample"]["action"] == "float32 (16, 32)"
    assert res["raw_sample"]["state.left_arm"] == "float32 (1, 7)"
    assert res["raw_sample"]["video.ego_view"] == "uint8 (1, 64, 64, 3)"
    assert res["raw_sample"]["annotation.human.action.task_description"].startswith("list[1]")
    assert (tmp_path / "frames_ego_view.png").stat().st_size > 1000
    assert (tmp_path / "state_action_ep1.png").stat().st_size > 1000
    assert json.loads((tmp_path / "inspect.json").read_text())["episodes"] == 4
    assert hash_tree(synthetic_dataset) == before
    with pytest.raises(DatasetError, match=r"\[episode 99\]: no such episode"):
        inspect_dataset(synthetic_dataset, tmp_path, episode=99)


def test_mode_inspect_demo(pick_place: Path, tmp_path: Path, run_cli, hash_tree):
    before = hash_tree(pick_place)
    # embodiment=so100 does not match the demo: the transformed sample is skipped (keeps the test fast)
    r = run_cli(["mode=inspect", "data=pick_place", "embodiment=so100", "tools.episode=4"], tmp_path / "run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "video.ego_view" in r.stdout and "uint8 (1, 256, 256, 3)" in r.stdout
    assert "transformed sample: not shown" in r.stdout and "so100" in r.stdout
    assert (tmp_path / "run/frames_ego_view.png").exists() and (
        tmp_path / "run/state_action_ep4.png"
    ).exists()
    assert hash_tree(pick_place) == before


def test_inspect_v30_follows_the_episode(tmp_path: Path, hash_tree):
    """LeRobot v3.0 read in place: the raw and the transformed sample both come from tools.episode,
    and the frames from the episode's span inside the shared mp4."""
    root = shared_path("datasets", "lerobot_v30_h264")
    before = hash_tree(root)
    meta = load_meta(root)
    emb = OmegaConf.merge(OmegaConf.structured(EmbodimentConfig), derive_embodiment(meta))
    res = inspect_dataset(root, tmp_path, episode=1, embodiment=emb)
    assert res["transformed_sample_status"] == "ok"
    assert res["transformed_sample"]["language"] == "str 'push the blue block left'"  # episode 1's task
    assert res["raw_sample"]["annotation.human.task_description"] == "list[1] ['push the blue block left']"
    cam = "observation.images.cam_high"
    mp4 = meta.video_path(1, cam)
    whole = read_frames(mp4, 132)
    assert len(whole) == 132
    first = raw_sample(meta, 1)["video.cam_high"][0]
    assert (first == whole[30]).all()  # episode 1 starts at frame 30 (from_timestamp 2.0 s at 15 fps)
    assert len(read_frames(mp4, 8, meta.video_span(1, cam))) == 8
    assert hash_tree(root) == before


def test_transformed_sample_uses_the_runs_data_config(
    synthetic_dataset: Path, tmp_path: Path, gr1_embodiment, monkeypatch
):
    # mode=inspect builds its dataset through the data factory from the run's `data` node, so a
    # setting such as data.align_timestamps=false reaches it (as in training)
    seen = []
    real = factory.make_dataset

    def recording(data_cfg, *args, **kwargs):
        seen.append(data_cfg)
        return real(data_cfg, *args, **kwargs)

    monkeypatch.setattr(factory, "make_dataset", recording)
    data_cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {"align_timestamps": False})
    res = inspect_dataset(
        synthetic_dataset, tmp_path, episode=1, embodiment=gr1_embodiment, data_cfg=data_cfg
    )
    assert res["transformed_sample_status"] == "ok"
    assert len(seen) == 1 and seen[0].align_timestamps is False
