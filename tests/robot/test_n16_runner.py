"""The G1 + Inspire runner against the fakes, driven by a fine-tuned GR00T N1.6 checkpoint: tiny
N1.6 fine-tune -> export -> Gr00tPolicy behind a ZeroMQ server (protocol auto = N1.6) -> the
runner's PolicyClient, the fake G1 over DDS and a synthetic camera server."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gr00t_exp.config.compose import compose_config
from gr00t_exp.data.meta import load_meta
from gr00t_exp.robot.camera_server import CameraServer
from gr00t_exp.robot.config import CameraSplit
from gr00t_exp.robot.fakes import FakeDfxHands, FakeG1
from gr00t_exp.robot.runner import run_robot
from tests.train.n16_run import n16_overrides, train_tiny_n16

from .rig import camera_server_cfg, free_port, robot_cfg

zmq_server = pytest.importorskip("gr00t_exp.serve.zmq_server")
policy_mod = pytest.importorskip("gr00t_exp.serve.policy")
client_mod = pytest.importorskip("gr00t_exp_client")


def test_runner_executes_an_n16_policy_on_the_fake_g1(tmp_path, domain_id):
    cache, out = tmp_path / "cache", tmp_path / "run"
    assert math.isfinite(train_tiny_n16(out, cache, steps=1))
    cfg = compose_config(n16_overrides(cache), output_dir=tmp_path / "robot")
    policy = policy_mod.Gr00tPolicy(out / "export" / "last", device="cpu")
    assert policy.generation == "n1.6"
    # One call first: the first inference pays one-off costs that, on a loaded 2-core host, could
    # outlast a short episode before its first chunk.
    spec = policy.spec
    policy.get_action(
        {
            "video": {k: np.zeros((1, 1, *hw, 3), np.uint8) for k, hw in spec.video.items()},
            "state": {k: np.zeros((1, 1, d), np.float32) for k, d in spec.state.items()},
            "language": {spec.language_key: [["wave"]]},
        }
    )
    port = free_port()
    cam = CameraServer(camera_server_cfg(port))
    cam.start_thread()
    try:
        with zmq_server.ZmqPolicyServer(policy, host="127.0.0.1", port=0) as srv:
            client = client_mod.PolicyClient("127.0.0.1", srv.port, timeout_ms=5000)
            with FakeG1(domain_id) as g1, FakeDfxHands(domain_id):
                rc = robot_cfg(domain_id, cam_port=port, max_episode_s=3.0, policy_timeout_s=5.0)
                # The head camera's two halves stand in for the two views the checkpoint was trained on.
                rc.cameras.streams[0].splits = [
                    CameraSplit("cam_right_high", 0, 64),
                    CameraSplit("cam_left_wrist", 64, 128),
                ]
                rc.recording.root = str(tmp_path / "rec")
                res = run_robot(rc, cfg.embodiment, client, record=True)
            client.close()
    finally:
        cam.close()
    assert res.ok, res.reason
    assert res.chunks >= 1 and res.policy_errors == 0 and g1.bad_crc == 0
    ep = load_meta(res.record_root).read_episode(0)
    assert ep["action"].shape[1] == 28 and np.isfinite(ep["action"]).all()
