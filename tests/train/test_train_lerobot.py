"""A few training steps of the tiny model on LeRobot-written datasets, read in place (v3.0 and v2.1,
no modality.json: the derived layout), without writing a byte under the dataset."""

from __future__ import annotations

import math

import pytest

from gr00t_exp.train.run import run
from tests.data.conftest import tree_hash
from tests.fixtures import shared_path

# An embodiment for the derived layout of the LeRobot probe datasets (one key per column).
PROBE_EMBODIMENT = [
    "embodiment=new_embodiment",
    "embodiment.name=probe_arm",
    "embodiment.modality=null",
    "embodiment.video_keys=[video.cam_high,video.cam_wrist]",
    "embodiment.state_keys=[state.state]",
    "embodiment.action_keys=[action.action]",
    "embodiment.language_key=annotation.human.task_description",
]


@pytest.mark.parametrize("name", ["lerobot_v30_h264"])  # v2.x training: tests/train/test_train.py
def test_trains_on_lerobot_dataset_in_place(name: str, make_cfg, tmp_path):
    root = shared_path("datasets", name)
    before = tree_hash(root)
    cfg = make_cfg(
        2, ["data=lerobot", f"data.sources=[{{path:{root}}}]", "data.val_episodes=1", *PROBE_EMBODIMENT]
    )
    # dict-valued fields are replaced here (a command-line dict would merge into the template's keys)
    cfg.embodiment.state_normalization = {"state.state": "min_max"}
    cfg.embodiment.action_normalization = {"action.action": "min_max"}
    value = run(cfg)
    assert isinstance(value, float) and math.isfinite(value)
    assert (tmp_path / "run" / "checkpoints" / "step=0000002.ckpt").is_file()
    assert tree_hash(root) == before
