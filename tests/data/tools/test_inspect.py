"""mode=inspect: summary, raw sample shapes, PNGs; never writes into the dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.tools.inspect import inspect_dataset


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
