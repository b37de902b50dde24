"""Runner + the serving layer's ReplayPolicy behind a real ZMQ server + fakes: the fake robot follows a
recorded episode, and the run's own recording round-trips through load_meta."""

import numpy as np
import pytest

from gr00t_exp.robot.camera_server import CameraServer, SyntheticSource
from gr00t_exp.robot.fakes import FakeDfxHands, FakeG1
from gr00t_exp.robot.recorder import Recorder
from gr00t_exp.robot.runner import run_robot

from .rig import FPS, camera_server_cfg, embodiment, free_port, robot_cfg, wave

replay = pytest.importorskip("gr00t_exp.serve.replay")
zmq_server = pytest.importorskip("gr00t_exp.serve.zmq_server")
client_mod = pytest.importorskip("gr00t_exp_client")


def _write_episode(root, hand_dim, n=60):
    dims = {"left_arm": 7, "right_arm": 7, "left_hand": hand_dim, "right_hand": hand_dim}
    rec = Recorder(root, FPS, dims, dims, ["cam_left_high"], "wave", "annotation.human.task_description")
    motion = wave(np.arange(n) / FPS, hand_dim)
    img = SyntheticSource(64, 48).read()[..., ::-1]  # stored RGB
    for i in range(n):
        row = {k: v[i] for k, v in motion.items()}
        rec.add(i / FPS, row, row, {"cam_left_high": img})
    return rec.save(), motion


@pytest.mark.parametrize("hand_dim", [6, 7], ids=["26d", "28d_7_per_hand"])
def test_replay_episode_end_to_end_and_recording_round_trip(tmp_path, domain_id, hand_dim):
    from gr00t_exp.data.meta import load_meta

    src, motion = _write_episode(tmp_path / "src", hand_dim)
    assert load_meta(src).episodes[0].length == 60
    policy = replay.ReplayPolicy(src, episode_index=0, action_horizon=16, execution_horizon=8)
    port = free_port()
    cam = CameraServer(camera_server_cfg(port))
    cam.start_thread()
    try:
        with zmq_server.ZmqPolicyServer(policy, host="127.0.0.1", port=0) as srv:
            client = client_mod.PolicyClient("127.0.0.1", srv.port, timeout_ms=1000)  # <= policy_timeout_s
            with FakeG1(domain_id) as g1, FakeDfxHands(domain_id):
                rc = robot_cfg(domain_id, cam_port=port, max_episode_s=60 / FPS, policy_timeout_s=1.0)
                rc.recording.root = str(tmp_path / "rec")
                res = run_robot(rc, embodiment(video=True, hand_dim=hand_dim), client, record=True)
            client.close()
    finally:
        cam.close()
    assert res.ok, res.reason
    assert res.chunks >= 3 and res.policy_errors == 0 and g1.bad_crc == 0
    # the run's recording is a valid dataset
    meta = load_meta(res.record_root)
    assert meta.fps == FPS and len(meta.episodes) == 1 and meta.tasks[0] == "wave"
    ep = meta.read_episode(0)
    width = 14 + 2 * hand_dim
    assert ep["observation.state"].shape[1] == width and ep["action"].shape[1] == width
    assert meta.video_path(0, "observation.images.cam_left_high").exists()
    # executed left-arm commands follow the recorded actions (a few frames of lag at most)
    ref = motion["left_arm"]
    got = ep["action"][:, :7]
    n = min(len(got), len(ref)) - 10
    # ReplayPolicy advances 8 rows per call, not per second: when requests come late (a loaded 2-core host)
    # the replayed motion lags the clock, so search the lag
    errs = [np.abs(got[10 + lag : 10 + n] - ref[10 : 10 + n - lag]).mean() for lag in range(0, 25)]
    assert min(errs) < 0.05, errs
    # and the fake robot's measured joints followed too (motor 15 = left shoulder pitch)
    meas = ep["observation.state"][:, 0]
    corr = [np.corrcoef(meas[10 + lag : 10 + n], ref[10 : 10 + n - lag, 0])[0, 1] for lag in range(0, 25)]
    assert np.ptp(meas) > 0.3 and max(corr) > 0.8
    if hand_dim == 7:
        # the 7th left-hand channel (dataset column 20) drives no finger, yet the recording carries the
        # commanded value (the replayed ramp), and the observed one is the last commanded value
        got7, ref7 = ep["action"][:, 20], motion["left_hand"][:, 6]
        errs7 = [np.abs(got7[10 + lag : 10 + n] - ref7[10 : 10 + n - lag]).mean() for lag in range(0, 25)]
        assert min(errs7) < 0.02, errs7
        obs7 = ep["observation.state"][10:, 20]
        assert np.all(np.abs(obs7 - ep["action"][10:, 20]) < 0.02)
