"""Every safety reaction of the runner, asserted at the fake robot (what it received and did) over real
DDS on loopback: lowstate watchdog and CRC, policy deadline (raising and blocking calls), NaN/inf
actions, joint limits, velocity/acceleration clamps with late and catch-up cycles, a robot that does
not follow, stale cameras."""

import threading
import time

import numpy as np
import pytest

from gr00t_exp.robot.arm import ArmIO
from gr00t_exp.robot.camera_server import CameraServer
from gr00t_exp.robot.config import g1_upper_body_joints
from gr00t_exp.robot.fakes import FakeG1
from gr00t_exp.robot.runner import run_robot

from .rig import (
    ScriptedPolicy,
    assert_graceful,
    assert_held,
    camera_server_cfg,
    embodiment,
    free_port,
    ramp_down_start,
    received,
    robot_cfg,
)

JOINTS = g1_upper_body_joints()
NAMES = sorted(JOINTS, key=lambda n: JOINTS[n].index)  # motor 12.. order, as received()[1] columns
ARM_GROUPS = {
    "left_arm": [n for n in NAMES if n.startswith("left_")],
    "right_arm": [n for n in NAMES if n.startswith("right_")],
    "waist": [n for n in NAMES if n.startswith("waist_")],
}


# -- rt/lowstate -------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["stop_publishing", "nan", "corrupt_crc"])
def test_lowstate_faults_hold_then_ramp_down(rig, domain_id, fault):
    """Silent, NaN or corrupt (bad CRC) lowstate: the command holds still, then the weight ramps to 0."""
    g1, _ = rig
    rc = robot_cfg(domain_id, max_episode_s=5.0, lowstate_abort_s=0.6)
    t_fault = []
    threading.Timer(0.6, lambda: (t_fault.append(time.time()), setattr(g1, fault, True))).start()
    res = run_robot(rc, embodiment(video=False), ScriptedPolicy())
    assert not res.ok
    expect = {"stop_publishing": "silent", "nan": "NaN", "corrupt_crc": "bad CRC"}[fault]
    assert expect in res.reason, res.reason
    assert res.run_s < 3.0
    assert_graceful(res, rc, g1)
    # Hold: from the fault (+ lowstate_stale_s + the deceleration at max_acceleration) to the very
    # end, ramp-down included, the fake received one unchanging joint command.
    settle = rc.safety.lowstate_stale_s + rc.safety.max_velocity / rc.safety.max_acceleration + 0.05
    assert t_fault[0] + settle < ramp_down_start(g1) or fault == "nan"  # a real hold before the ramp
    assert assert_held(g1, t_fault[0] + settle) >= 20
    if fault == "corrupt_crc":
        assert res.lowstate_crc_errors > 50 and any("CRC" in e for e in res.events)
    else:
        assert res.lowstate_crc_errors == 0


def test_corrupt_lowstate_refused_at_start(domain_id):
    with FakeG1(domain_id) as g1:
        g1.corrupt_crc = True
        rc = robot_cfg(domain_id)
        rc.arm.lowstate_timeout_s = 0.5
        rc.hands.kind = "none"
        with pytest.raises(TimeoutError, match="failed the CRC"):
            run_robot(rc, embodiment(video=False), ScriptedPolicy())
        time.sleep(0.05)
        assert g1.commands == 0


# -- the policy ----------------------------------------------------------------------------------
def test_policy_errors_hold_pose_then_stop(rig, domain_id):
    """A policy call that fails (raises after 100 ms) every time: hold the last waypoint, stop after
    policy_timeout_s."""
    g1, _ = rig
    rc = robot_cfg(domain_id, max_episode_s=8.0, policy_timeout_s=1.0, max_policy_errors=1000)
    res = run_robot(rc, embodiment(video=False), ScriptedPolicy("stall_after", n=2))
    assert not res.ok and "policy timeout" in res.reason and res.policy_errors > 0
    assert_graceful(res, rc, g1)
    # the arms held still (the last waypoint) for the policy timeout before the ramp-down
    t_down = ramp_down_start(g1)
    assert_held(g1, t_down - 0.5, t_down)


def test_blocking_policy_is_stopped_by_the_command_loop(rig, domain_id):
    """A get_action that never returns: the command loop enforces policy_timeout_s by itself."""
    g1, _ = rig
    rc = robot_cfg(domain_id, max_episode_s=6.0, policy_timeout_s=0.5, max_policy_errors=1000)
    pol = ScriptedPolicy("block_after", n=2)
    try:
        res = run_robot(rc, embodiment(video=False), pol)
    finally:
        pol.release.set()
    assert not res.ok and "policy timeout" in res.reason, res.reason
    assert res.chunks == 2 and pol.t_blocked is not None
    # the ramp-down began within policy_timeout_s of the call blocking (+ slack for a loaded host),
    # not at max_episode_s; the whole run, ramp-down and the bounded wait for that thread: a few s
    assert ramp_down_start(g1) - pol.t_blocked < rc.safety.policy_timeout_s + 0.4
    assert res.run_s < 4.0
    assert_graceful(res, rc, g1)
    assert_held(g1, ramp_down_start(g1) + rc.safety.max_velocity / rc.safety.max_acceleration + 0.05)
    assert any("still blocked" in e for e in res.events)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_actions_are_rejected(rig, domain_id, bad):
    g1, _ = rig
    rc = robot_cfg(domain_id, max_episode_s=5.0, max_policy_errors=3)
    res = run_robot(rc, embodiment(video=False), ScriptedPolicy(bad, n=1))
    assert not res.ok and "consecutive policy failures" in res.reason and "NaN/inf" in res.reason
    _, q, _ = received(g1)
    assert np.isfinite(q).all() and np.isfinite(np.array([q for _, q in g1.history])).all()
    assert_graceful(res, rc, g1)


def test_camera_stale_stops_policy_calls_then_stops(rig, domain_id):
    g1, _ = rig
    port = free_port()
    cam = CameraServer(camera_server_cfg(port))
    cam.start_thread()
    rc = robot_cfg(domain_id, cam_port=port, max_episode_s=5.0, policy_timeout_s=0.4)
    t_close = []
    threading.Timer(0.8, lambda: (cam.close(), t_close.append(time.monotonic()))).start()
    pol = ScriptedPolicy()
    res = run_robot(rc, embodiment(video=True), pol)
    assert not res.ok and "policy timeout" in res.reason
    assert any("camera" in e for e in res.events)
    # the last frame is at most stale_s old when a call starts: none once the camera went stale
    assert pol.calls >= 2 and max(pol.call_times) < t_close[0] + rc.cameras.stale_s + 0.1
    assert_graceful(res, rc, g1)


# -- joint limits, velocity, acceleration ------------------------------------------------------
@pytest.mark.parametrize("side", ["upper", "lower"])
def test_joint_limits_of_every_arm_joint_group(rig, domain_id, side):
    """Every joint of the left arm, right arm and waist commanded 10 rad past a limit: the fake
    receives exactly that joint's own limit (minus the margin), never more."""
    g1, _ = rig
    rc = robot_cfg(
        domain_id, max_episode_s=1.4, max_velocity=4.0, max_acceleration=40.0, max_tracking_error=10.0
    )
    res = run_robot(
        rc,
        embodiment(video=False, waist=True),
        ScriptedPolicy(f"limits_{'high' if side == 'upper' else 'low'}"),
    )
    assert res.ok, res.reason
    _, q, _ = received(g1)
    m = rc.safety.limit_margin
    for group, names in ARM_GROUPS.items():
        for n in names:
            col = q[:, NAMES.index(n)]
            if side == "upper":
                bound = JOINTS[n].upper - m
                assert col.max() <= bound + 1e-5, (group, n, col.max(), bound)
                assert col.max() >= bound - 1e-3, (group, n, "did not reach", col.max(), bound)
            else:
                bound = JOINTS[n].lower + m
                assert col.min() >= bound - 1e-5, (group, n, col.min(), bound)
                assert col.min() <= bound + 1e-3, (group, n, "did not reach", col.min(), bound)


def _max_displacement(t: np.ndarray, q: np.ndarray, window: float) -> float:
    """Largest |q(t2) - q(t1)| over command pairs with t2 - t1 <= window (any joint)."""
    worst = 0.0
    hi = np.searchsorted(t, t + window, side="right")
    for i in range(len(t)):
        seg = q[i : hi[i]]
        worst = max(worst, float(np.abs(seg - q[i]).max()))
    return worst


def test_velocity_and_acceleration_hold_at_every_window_with_catch_up_cycles(rig, domain_id, monkeypatch):
    """A step target, and a host that makes some cycles late (3 ms: the next cycle catches up at
    once; 6 ms: the schedule resets). Measured on what the fake received, per the sender's clock:
    displacement over any 20 ms and 100 ms window within max_velocity, and acceleration within
    max_acceleration."""
    g1, _ = rig
    vmax, amax = 0.5, 2.0
    rc = robot_cfg(domain_id, max_episode_s=1.8, max_velocity=vmax, max_acceleration=amax)
    publish = ArmIO.publish
    count = [0]

    def late_publish(self, q, weight):
        out = publish(self, q, weight)
        count[0] += 1
        if count[0] % 7 == 0:
            time.sleep(0.003)  # after the write: this cycle's command went out on time
        elif count[0] % 31 == 0:
            time.sleep(0.006)
        return out

    monkeypatch.setattr(ArmIO, "publish", late_publish)
    res = run_robot(rc, embodiment(video=False), ScriptedPolicy("step", step=0.6))
    assert res.ok, res.reason
    T = res.period_s
    assert sum(p < 0.5 * T for p in res.periods) >= 20, "no catch-up cycles happened"
    assert res.overruns >= 5
    t, q, w = received(g1)
    sel = w > 0  # ramp-up holds the start pose anyway; keep the whole run
    t, q = t[sel], q[sel]
    # the move saturated the clamp: the left arm travelled far at the limit
    assert np.ptp(q[:, NAMES.index("left_elbow")]) > 0.4
    # 2 ms of allowance: the sender stamps a sample when it writes, a little after the cycle's clock
    # reading; over 20 ms a catch-up burst moved 1.34 x the limit before the fix.
    for window in (0.02, 0.1):
        d = _max_displacement(t, q, window)
        assert d <= vmax * (window + 0.002), (window, d / window)
    # acceleration: second differences on a 50 ms grid (robust to the per-sample time jitter)
    h = 0.05
    grid = np.arange(t[0], t[-1], h)
    qg = np.stack([np.interp(grid, t, q[:, j]) for j in range(q.shape[1])], axis=1)
    acc = np.abs(np.diff(qg, 2, axis=0)) / h**2
    assert acc.max() <= amax + 1.0, acc.max()
    assert acc.max() >= 0.5 * amax  # the clamp was active (the step asks for far more)


# -- a robot that does not follow ----------------------------------------------------------------
@pytest.mark.parametrize("fault", ["reject_commands", "mode_machine_after_start"])
def test_robot_not_following_stops_with_a_reason(rig, domain_id, fault):
    """Commands rejected mid-run (the robot switched mode / now expects another mode_machine): the
    measured joints stop tracking, the runner ramps down and reports a failure."""
    g1, _ = rig
    rc = robot_cfg(domain_id, max_episode_s=4.0, max_tracking_error=0.1, tracking_error_s=0.2)

    def inject():
        if fault == "reject_commands":
            g1.reject_commands = True
        else:
            g1.mode_machine = 6  # still reports 5: the runner's commands carry 5 and are ignored

    threading.Timer(0.7, inject).start()
    res = run_robot(rc, embodiment(video=False), ScriptedPolicy())
    assert not res.ok and "does not follow" in res.reason and "max_tracking_error" in res.reason
    assert res.run_s < 3.0
    assert (g1.rejected if fault == "reject_commands" else g1.bad_mode_machine) > 20
    assert res.weights[-1] == 0.0 and res.tracking_error_max > 0.1
