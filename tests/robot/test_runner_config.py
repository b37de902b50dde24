"""mode=robot takes its settings from the config: the waypoint rate from the dataset, the client
from every client field of deploy.policy."""

from __future__ import annotations

import json

import pytest

from gr00t_exp.config.compose import compose_config
from gr00t_exp.robot import runner
from gr00t_exp.robot.config import robot_config
from gr00t_exp.robot.runner import PreflightError, control_fps


def _dataset(root, fps: float):
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps({"fps": fps}))
    return root


def test_fps_comes_from_the_robot_config_first(tmp_path):
    cfg = compose_config(["mode=robot", "deploy=g1_inspire", "deploy.policy.host=h"])
    assert control_fps(cfg, robot_config(cfg)) == 30.0  # the preset's control.fps


def test_fps_comes_from_the_training_dataset_when_unset(tmp_path):
    root = _dataset(tmp_path / "g1", 50.0)
    cfg = compose_config(["mode=robot", "data=lerobot", f"data.sources=[{{path: {root}}}]"])
    assert robot_config(cfg).control.fps is None
    assert control_fps(cfg, robot_config(cfg)) == 50.0
    synthetic = compose_config(["mode=robot", f"data.synthetic.out_dir={_dataset(tmp_path / 'syn', 20.0)}"])
    assert control_fps(synthetic, robot_config(synthetic)) == 20.0


def test_no_fps_anywhere_is_a_preflight_error_naming_the_key(tmp_path):
    cfg = compose_config(["mode=robot", "data=lerobot", f"data.sources=[{{path: {tmp_path / 'missing'}}}]"])
    with pytest.raises(PreflightError, match=r"deploy.robot.control.fps is not set"):
        control_fps(cfg, robot_config(cfg))


def test_mode_robot_builds_its_client_from_every_client_field(monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_client(node):
        seen.update(host=node.host, retries=node.retries, curve=node.curve_server_key_file)
        raise Stop

    monkeypatch.setattr(runner, "policy_client", fake_client)
    cfg = compose_config(
        ["mode=robot", "deploy=g1_inspire", "deploy.policy.host=gpu", "deploy.policy.retries=5",
         "deploy.policy.curve_server_key_file=keys/server.key"]
    )  # fmt: skip
    with pytest.raises(Stop):
        runner.run(cfg)
    assert seen == {"host": "gpu", "retries": 5, "curve": "keys/server.key"}
