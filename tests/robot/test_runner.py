"""End-to-end: runner + policy + fake G1 / Inspire / camera server on loopback DDS and ZMQ."""

import os
import signal
import time

import numpy as np
import pytest

from gr00t_exp.robot.arm import ModeMachineError
from gr00t_exp.robot.fakes import FakeFtpHands, FakeG1
from gr00t_exp.robot.runner import run_robot
from gr00t_exp.robot.safety import StopSignal

from .rig import FPS, ScriptedPolicy, assert_graceful, embodiment, robot_cfg, wave


@pytest.mark.parametrize("hand_dim", [6, 7], ids=["26d", "28d_7_per_hand"])
def test_scripted_run_tracks_and_ramps(rig, domain_id, hand_dim):
    g1, hands = rig
    rc = robot_cfg(domain_id, max_episode_s=1.2)
    rc.hands.extra_fill = 0.05
    rc.hands.open_on_stop = False  # keep the last hand command to compare it
    pol = ScriptedPolicy(hand_dim=hand_dim)
    res = run_robot(rc, embodiment(video=False, hand_dim=hand_dim), pol)
    assert res.ok, res.reason
    assert "max episode" in res.reason
    assert res.chunks >= 3 and g1.commands > 50 and g1.bad_crc == 0 and g1.bad_mode_machine == 0
    assert_graceful(res, rc, g1)
    # the fake's arm followed the policy: left shoulder pitch (motor 15) swung through +-0.2 rad
    q15 = np.array([q[15] for _, q in g1.history])
    assert np.ptp(q15) > 0.2
    assert hands.commands > 10
    assert g1.weight == 0.0  # controller owns the arms again
    # the fake DFX right hand (entries 0-5) went to the policy's 6 finger values (0.55..0.85)
    assert 0.5 < hands.q[:6].mean() < 0.9
    if hand_dim == 7:
        # the 7th channel drives no finger: observed as extra_fill first, then as the last commanded value
        first, later = pol.observed[0], pol.observed[2:]
        assert first["state.left_hand"][0, 6] == pytest.approx(0.05)
        assert first["state.right_hand"][0, 6] == pytest.approx(0.05)
        assert later and all(0.1 <= o["state.left_hand"][0, 6] <= 0.1 + 0.2 * 2.0 for o in later)
        assert all(-0.1 - 0.2 * 2.0 <= o["state.right_hand"][0, 6] <= -0.1 for o in later)


def test_wrong_mode_machine_refuses_to_start(domain_id):
    with FakeG1(domain_id, mode_machine=6) as g1:
        rc = robot_cfg(domain_id)
        rc.hands.kind = "none"
        with pytest.raises(ModeMachineError, match="mode_machine=6"):
            run_robot(rc, embodiment(video=False), ScriptedPolicy())
        time.sleep(0.05)
        assert g1.commands == 0 and g1.bad_mode_machine == 0


def test_commands_with_a_mode_machine_the_robot_ignores_fail_the_run(domain_id):
    # the fake checks mode_machine like the robot: the runner, configured for 6, talks to a robot that
    # claims 6 but accepts only 5. Its commands are ignored, the arms do not follow: a failed run.
    with FakeG1(domain_id, mode_machine=5) as g1:
        g1.report_mode_machine = 6
        rc = robot_cfg(domain_id, max_episode_s=4.0, max_tracking_error=0.1, tracking_error_s=0.2)
        rc.arm.expected_mode_machine = 6
        rc.hands.kind = "none"
        res = run_robot(rc, embodiment(video=False), ScriptedPolicy())
        assert g1.commands == 0 and g1.bad_mode_machine > 50
    assert not res.ok and "does not follow" in res.reason and "mode_machine" in res.reason
    assert res.run_s < 3.0 and res.weights[-1] == 0.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_ramps_down_gracefully(rig, domain_id, sig):
    g1, _ = rig
    rc = robot_cfg(domain_id, max_episode_s=10.0)
    before = signal.getsignal(sig)
    # Sent from inside the 3rd policy call: the runner's handler is installed by then for sure (a
    # SIGTERM without it would kill the test process).
    pol = ScriptedPolicy(on_call={3: lambda: os.kill(os.getpid(), sig)})
    res = run_robot(rc, embodiment(video=False), pol)
    assert res.ok and signal.Signals(sig).name in res.reason and res.run_s < 4
    assert_graceful(res, rc, g1)  # at the fake: the weight it received ramped to 0
    assert signal.getsignal(sig) is before  # restored


def test_dry_run_and_refused_confirmation_send_nothing(rig, domain_id):
    g1, hands = rig
    rc = robot_cfg(domain_id, max_episode_s=0.3, dry_run=True)
    res = run_robot(rc, embodiment(video=False), ScriptedPolicy())
    assert res.cycles > 50 and res.chunks >= 1
    rc = robot_cfg(domain_id, confirm=True)
    res2 = run_robot(rc, embodiment(video=False), ScriptedPolicy(), input_fn=lambda p: "n")
    assert res2.cycles == 0 and "not confirmed" in res2.reason
    time.sleep(0.05)
    assert g1.commands == 0 and hands.commands == 0


@pytest.mark.parametrize("hand_dim", [6, 7], ids=["26d", "28d_7_per_hand_0_1000"])
def test_ftp_hands_follow(domain_id, hand_dim):
    with FakeG1(domain_id) as g1, FakeFtpHands(domain_id) as fh:
        rc = robot_cfg(domain_id, max_episode_s=1.0)
        rc.hands.kind = "ftp"
        rc.hands.open_on_stop = False  # keep the last command to compare it
        scale = 1.0
        if hand_dim == 7:  # a dataset with 7 values per hand in 0..1000 (1000 = open)
            rc.hands.dataset_open, rc.hands.dataset_closed, scale = [1000.0], [0.0], 1000.0
        pol = ScriptedPolicy(hand_dim=hand_dim, hand_scale=scale)
        res = run_robot(rc, embodiment(video=False, hand_dim=hand_dim), pol)
        assert res.ok and g1.commands > 0 and fh.commands > 10
        # right hand target = 1 - 0.5 * (0.6 + 0.3 sin) in [0.55, 0.85]: the fake's right hand (0-5) moved there
        assert 0.5 < fh.q[:6].mean() < 0.9
        # observations come back in the dataset's units (0..1000 for the 7-D case)
        obs = pol.observed[-1]["state.right_hand"][0, :6]
        assert 0.45 * scale < obs.mean() < 0.95 * scale


def test_stop_object_without_signals_and_realtime_command_thread(rig, domain_id):
    stop = StopSignal()
    rc = robot_cfg(domain_id, max_episode_s=10.0)
    rc.control.realtime_priority, rc.control.fifo_priority = True, 10
    rc.control.cpu_affinity = [min(os.sched_getaffinity(0))]
    pol = ScriptedPolicy(on_call={3: lambda: stop.stop("operator")})
    before = (os.sched_getscheduler(0), os.sched_getaffinity(0))
    res = run_robot(rc, embodiment(video=False), pol, stop=stop)
    assert res.reason == "operator" and res.ok
    # applied to the command thread only (SCHED_FIFO where permitted), restored afterwards
    assert res.realtime["cpus"] == set(rc.control.cpu_affinity)
    assert res.summary()["sched_fifo"] == res.realtime["fifo"]
    assert pol.sched == os.SCHED_OTHER
    assert (os.sched_getscheduler(0), os.sched_getaffinity(0)) == before
    assert FPS == 30.0 and wave(np.zeros(1))["left_hand"].shape == (1, 6)
