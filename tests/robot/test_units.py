"""Unit tests without DDS: safety, hands mapping, chunks, layout, camera colour order."""

import numpy as np
import pytest

from gr00t_exp.robot import hands
from gr00t_exp.robot.arm import ModeMachineError, check_mode_machine, weight_ramp
from gr00t_exp.robot.chunks import Trajectory
from gr00t_exp.robot.config import RobotConfig, g1_upper_body_joints
from gr00t_exp.robot.handmap import HandMap
from gr00t_exp.robot.layout import RobotLayout
from gr00t_exp.robot.safety import JointLimits, MotionFilter, SafetyError, Watchdog, confirm

from .rig import embodiment


def test_limits_are_per_joint_not_mirrored():
    j = g1_upper_body_joints()
    lim = JointLimits.from_config(j, ["left_shoulder_roll", "right_shoulder_roll"], 0.05)
    np.testing.assert_allclose(lim.lower, [-1.5882 + 0.05, -2.2515 + 0.05])
    np.testing.assert_allclose(lim.upper, [2.2515 - 0.05, 1.5882 - 0.05])
    # 2.0 rad is fine on the left shoulder roll, out of range on the right
    assert lim.violations(np.array([2.0, 2.0])) == [lim.violations(np.array([0.0, 2.0]))[0]]
    with pytest.raises(ValueError, match="limit_margin"):
        JointLimits.from_config(j, ["waist_roll"], 0.6)


def test_motion_filter_clamps_velocity_acceleration_and_limits():
    lim = JointLimits.from_config(g1_upper_body_joints(), ["left_elbow", "right_elbow"], 0.05)
    f = MotionFilter(lim, max_velocity=1.0, max_acceleration=5.0)
    f.reset(np.zeros(2))
    dt = 0.004
    qs = [f.step(np.array([5.0, -0.5]), dt) for _ in range(1500)]
    q = np.array(qs)
    v = np.diff(np.vstack([np.zeros(2), q]), axis=0) / dt
    assert np.abs(v).max() <= 1.0 + 1e-9
    assert np.abs(np.diff(v, axis=0)).max() / dt <= 5.0 * 1.1  # the last settling step may round up
    assert q[:, 0].max() <= 2.0944 - 0.05 + 1e-12  # elbow upper limit with margin
    assert q[-1, 1] == pytest.approx(-0.5, abs=1e-3)  # reaches the target...
    assert q[:, 1].min() >= -0.5 - 1e-3  # ...without overshooting it
    with pytest.raises(SafetyError):
        f.step(np.array([np.nan, 0.0]), dt)


def test_watchdog_and_confirm():
    t = [0.0]
    w = Watchdog(0.1, clock=lambda: t[0])
    assert w.stale()
    w.feed()
    t[0] = 0.05
    assert not w.stale()
    t[0] = 0.2
    assert w.stale()
    assert confirm("?", lambda p: "y") and not confirm("?", lambda p: "") and not confirm("?", lambda p: "no")


def test_hand_mappings_dfx_right_first_and_ftp_scale():
    left = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    right = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
    q12 = hands.dfx_from_hands(left, right)
    np.testing.assert_allclose(q12[:6], right)
    np.testing.assert_allclose(q12[6:], left)
    l2, r2 = hands.hands_from_dfx(q12)
    np.testing.assert_allclose(l2, left) and np.testing.assert_allclose(r2, right)
    assert hands.ftp_from_hand([1.0, 0.0, 0.5, 1.2, -0.1, 0.123]) == [1000, 0, 500, 1000, 0, 123]
    np.testing.assert_allclose(
        hands.hand_from_ftp([1000, 0, 500, 250, 750, 1]), [1, 0, 0.5, 0.25, 0.75, 0.001]
    )
    rl = hands.RateLimiter(2.0, np.ones(6))
    out = rl.step(np.zeros(6), 0.1)
    np.testing.assert_allclose(out, 0.8)


def test_mode_machine_and_weight_ramp():
    check_mode_machine(5, 5)
    with pytest.raises(ModeMachineError, match="expected_mode_machine=5"):
        check_mode_machine(6, 5)
    assert weight_ramp(0.0, 2.0) == 0 and weight_ramp(1.0, 2.0) == 0.5 and weight_ramp(3.0, 2.0) == 1
    assert weight_ramp(0.5, 1.0, 1.0, 0.0) == 0.5


def test_trajectory_interpolates_holds_and_blends():
    tr = Trajectory(np.array([0.0]), blend_s=0.1)
    assert tr.sample(5.0)[0][0] == 0.0
    wp = np.arange(4, dtype=float)[:, None]  # 0, 1, 2, 3 at 10 Hz from t=1.0
    tr.push(wp, t0=1.0, dt=0.1, now=1.0)
    assert tr.sample(1.15 + 0.1)[0][0] == pytest.approx(2.5)  # after the blend: pure new chunk
    assert tr.sample(10.0)[0][0] == 3.0  # ran out: hold the last waypoint
    x, _ = tr.sample(1.05)  # mid-blend: halfway between old (0) and new (0.5)
    assert x[0] == pytest.approx(0.25)


def test_layout_maps_keys_to_joints_and_hands():
    lay = RobotLayout.build(embodiment(), RobotConfig())
    assert lay.n_joints == 17 and lay.size == 29
    assert [lay.joint_names[i] for i in lay.index["right_arm"]][1] == "right_shoulder_roll"
    assert list(lay.index["left_hand"]) == list(range(17, 23))
    emb = embodiment()
    spans = {"left_arm": (0, 7), "right_arm": (7, 14), "left_hand": (14, 21), "right_hand": (21, 27)}
    emb.modality = {
        g: {k: {"start": a, "end": b} for k, (a, b) in spans.items()} for g in ("state", "action")
    }
    with pytest.raises(ValueError, match="different widths"):  # 7-D left, 6-D right
        RobotLayout.build(emb, RobotConfig())


def test_hand_map_indices_scale_invert_and_extras():
    hc = RobotConfig().hands
    hc.finger_indices = [1, 2, 3, 4, 5, 6]  # dataset dim 0 drives no finger
    hc.dataset_open, hc.dataset_closed = [0.0], [1000.0]  # 0..1000, 1000 = closed (inverted)
    hc.extra_fill = 0.7
    hm = HandMap.from_config(hc, 7)
    assert list(hm.extra) == [0] and hm.n_extra == 1 and not hm.identity
    x = np.array([[5.0, 0.0, 250.0, 500.0, 750.0, 1000.0, 100.0]])
    np.testing.assert_allclose(hm.to_inspire(x), [[1.0, 0.75, 0.5, 0.25, 0.0, 0.9]])
    back = hm.to_dataset(hm.to_inspire(x), x[:, [0]])
    np.testing.assert_allclose(back, x)
    np.testing.assert_allclose(hm.to_dataset(np.ones(6))[0], 0.7)  # extra from the fill value
    assert HandMap.from_config(RobotConfig().hands, 6).identity


@pytest.mark.parametrize(
    "change, dim, match",
    [
        ({"finger_indices": [0, 1, 2, 3, 4]}, 6, "finger_indices"),  # 5 fingers
        ({"finger_indices": [0, 1, 2, 3, 4, 4]}, 7, "finger_indices"),  # duplicate
        ({"finger_indices": [1, 2, 3, 4, 5, 6]}, 6, r"finger_indices.*6-D"),  # past the hand width
        ({}, 5, r"finger_indices.*5-D"),  # a hand narrower than 6
        ({"dataset_dim": 6}, 7, "dataset_dim"),
        ({"dataset_open": [1.0, 1.0]}, 6, "dataset_open"),
        ({"dataset_open": [0.0]}, 6, "dataset_open equals dataset_closed"),
        ({"extra_state": "zero"}, 7, "extra_state"),
    ],
)
def test_hand_map_validation_names_the_key(change, dim, match):
    hc = RobotConfig().hands
    for k, v in change.items():
        setattr(hc, k, v)
    with pytest.raises(ValueError, match=match):
        HandMap.from_config(hc, dim)


@pytest.mark.parametrize("hand_dim", [6, 7])
def test_layout_read_write_round_trip(hand_dim):
    rc = RobotConfig()
    rc.hands.dataset_open, rc.hands.dataset_closed = [0.0], [1.0]  # dataset: 1 = closed
    lay = RobotLayout.build(embodiment(hand_dim=hand_dim), rc)
    assert lay.dim("left_hand") == hand_dim and lay.size == 17 + 12 + 2 * (hand_dim - 6)
    full = np.zeros(lay.size)
    vals = np.linspace(0.1, 0.7, hand_dim)
    lay.write(full, "right_hand", vals)
    np.testing.assert_allclose(full[lay.right_hand], 1.0 - vals[:6])  # Inspire: 1 = open
    np.testing.assert_allclose(lay.read(full, "right_hand"), vals)
    assert np.all(full[lay.left_hand] == 0)
    if hand_dim == 7:
        assert full[lay.extras].tolist() == [0.0, 0.7]  # right extra, unscaled


def test_bgr_to_rgb_happens_once_in_decode():
    import cv2

    from gr00t_exp.robot.camera_server import SyntheticSource, encode_jpeg
    from gr00t_exp.robot.cameras import decode_jpeg_rgb

    bgr = SyntheticSource(64, 32, index=0).read()  # camera 0's patch is red, stored BGR (0, 0, 255)
    assert tuple(bgr[16, 5]) == (0, 0, 255)
    rgb = decode_jpeg_rgb(encode_jpeg(bgr, 95))
    r, g, b = rgb[16, 5].astype(int)
    assert r > 200 and g < 50 and b < 50
    # decoding is the *only* conversion: OpenCV's own decode is BGR
    raw = cv2.imdecode(np.frombuffer(encode_jpeg(bgr, 95), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(raw[..., ::-1], rgb)


def test_camera_server_per_port_and_client_rgb():
    import time

    from gr00t_exp.robot.camera_server import CameraServer
    from gr00t_exp.robot.cameras import CameraClient
    from gr00t_exp.robot.config import CamerasConfig, CameraServerConfig, CameraSourceConfig, CameraStream

    from .rig import free_port

    port = free_port()
    srv = CameraServer(
        CameraServerConfig(
            bind=f"tcp://127.0.0.1:{port}", layout="per_port", fps=30,
            sources=[CameraSourceConfig("a", "synthetic", 64, 48), CameraSourceConfig("b", "synthetic", 32, 48)],
        )
    )  # fmt: skip
    srv.start_thread()
    cli = CameraClient(
        CamerasConfig(
            host="127.0.0.1",
            streams=[CameraStream(port=port, name="a"), CameraStream(port=port + 1, name="b")],
        )
    ).start()
    try:
        frames = cli.wait_ready(["a", "b"], 5.0)
        assert frames["a"].image.shape == (48, 64, 3) and frames["b"].image.shape == (48, 32, 3)
        r, g, b = frames["a"].image[24, 4].astype(int)  # camera 0: red patch
        assert r > 200 and g < 60 and b < 60
        r, g, b = frames["b"].image[24, 4].astype(int)  # camera 1: green patch
        assert g > 200 and r < 60 and b < 60
        assert time.monotonic() - frames["a"].t_rx < 1.0
    finally:
        cli.close()
        srv.close()


def test_deploy_g1_inspire_composes_typed():
    from gr00t_exp.config.compose import compose_config
    from gr00t_exp.robot.config import robot_config

    cfg = compose_config(
        ["mode=robot", "deploy=g1_inspire", "embodiment=unitree_g1_inspire_26d", "deploy.policy.host=h"]
    )
    rc = robot_config(cfg)
    assert rc.hands.kind == "dfx" and rc.arm.expected_mode_machine == 5
    assert (
        rc.joints["right_shoulder_roll"].upper == 1.5882 and rc.joints["left_shoulder_roll"].upper == 2.2515
    )
    lay = RobotLayout.build(cfg.embodiment, rc)
    assert lay.video_keys == ["cam_right_high", "cam_left_wrist"]
    # the 28-D 7-per-hand embodiment: fingers from dims 0-5 of each hand, dim 6 extra
    lay7 = RobotLayout.build(compose_config(["embodiment=unitree_g1_inspire_2cameras"]).embodiment, rc)
    assert lay7.dim("left_hand") == 7 and lay7.dim("right_hand") == 7 and lay7.n_extra == 1
    rc.hands.finger_indices = [0, 1, 2, 3, 4, 7]
    with pytest.raises(ValueError, match=r"deploy.robot.hands.finger_indices=.*7-D"):
        RobotLayout.build(compose_config(["embodiment=unitree_g1_inspire_2cameras"]).embodiment, rc)


def test_mode_robot_refuses_bad_hand_mapping_before_touching_dds(caplog):
    from gr00t_exp.config.compose import compose_config
    from gr00t_exp.robot.runner import run

    cfg = compose_config(
        ["mode=robot", "deploy=g1_inspire", "embodiment=unitree_g1_inspire_2cameras", "deploy.policy.host=127.0.0.1",
         "deploy.policy.timeout_ms=50", "deploy.robot.hands.finger_indices=[0,1,2,3,4]"]
    )  # fmt: skip
    assert run(cfg) == 2
    assert "deploy.robot.hands.finger_indices" in caplog.text


def test_policy_client_timeout_rule_agrees_with_the_runner():
    """One rule: the client gives up no later than the runner's policy watchdog; the schema default
    and the shipped preset agree with it (1500 ms against policy_timeout_s 3 s: one retry fits)."""
    from types import SimpleNamespace

    from gr00t_exp.config.compose import compose_config
    from gr00t_exp.robot.config import SafetyConfig, robot_config
    from gr00t_exp.robot.runner import run_robot
    from gr00t_exp.robot.safety import check_client_timeout
    from gr00t_exp.serve.config import ClientConfig

    watchdog_ms = 1000 * SafetyConfig().policy_timeout_s
    assert ClientConfig().timeout_ms <= watchdog_ms / 2
    for preset in ("zmq", "g1_inspire"):
        cfg = compose_config(["mode=robot", f"deploy={preset}", "deploy.policy.host=h"])
        check_client_timeout(cfg.deploy.policy.timeout_ms, robot_config(cfg).safety.policy_timeout_s)
    check_client_timeout(3000, 3.0)
    check_client_timeout(None, 3.0)  # a local policy has no client timeout
    with pytest.raises(ValueError, match=r"deploy.policy.timeout_ms=5000.*policy_timeout_s=3"):
        check_client_timeout(5000, 3.0)
    # the runner refuses it before opening DDS (no domain is touched: dds.domain_id stays invalid)
    rc = RobotConfig()
    rc.dds.domain_id, rc.control.fps = 10_000, 30.0
    with pytest.raises(ValueError, match="deploy.policy.timeout_ms"):
        run_robot(rc, embodiment(video=False), SimpleNamespace(timeout_ms=5000))


def test_motion_filter_limits_hold_per_elapsed_time_with_uneven_steps():
    """Catch-up cycles (tiny dt) and late ones (long dt): |dq| <= vmax * dt at every step, so over any
    window too; acceleration per step within amax * dt."""
    lim = JointLimits.from_config(g1_upper_body_joints(), ["left_elbow"], 0.05)
    f = MotionFilter(lim, max_velocity=0.5, max_acceleration=2.0)
    f.reset(np.zeros(1))
    rng = np.random.default_rng(1)
    dts = rng.choice([0.004, 0.0002, 0.007, 0.004, 0.0005], size=800)
    q_prev, v_prev = 0.0, 0.0
    for dt in dts:
        q = f.step(np.array([1.5]), dt)[0]
        v = (q - q_prev) / dt
        assert abs(q - q_prev) <= 0.5 * dt + 1e-12
        assert abs(v - v_prev) <= 2.0 * dt * 1.001 + 1e-9
        q_prev, v_prev = q, v
    assert q_prev > 1.0  # it did move at the limit for a while


def test_policy_deadline_and_tracking_monitor():
    from gr00t_exp.robot.safety import PolicyDeadline, TrackingMonitor, check_client_timeout

    d = PolicyDeadline(0.5)
    assert d.check(10.0, None) is None
    d.started(10.0)
    assert d.check(10.4, None) is None
    assert "get_action outstanding for 0.60 s" in d.check(10.6, None)  # a blocked call, no reply yet
    d.finished()
    assert d.check(10.6, 10.3) is None and "no usable chunk" in d.check(10.9, 10.3)  # queue ran dry
    with pytest.raises(ValueError, match="policy_timeout_s"):
        PolicyDeadline(0.0)
    with pytest.raises(ValueError, match="policy_timeout_s"):
        check_client_timeout(600, 0.5)
    t = TrackingMonitor(["a", "b"], max_error=0.1, duration_s=0.2)
    assert t.update(np.zeros(2), np.array([0.0, 0.3]), 1.0) is None  # above, not yet for long
    assert t.update(np.zeros(2), np.array([0.0, 0.05]), 1.1) is None  # back inside: resets
    assert t.update(np.zeros(2), np.array([0.0, 0.3]), 1.2) is None
    reason = t.update(np.zeros(2), np.array([0.0, 0.3]), 1.45)
    assert "does not follow" in reason and " on b " in reason and t.peak == pytest.approx(0.3)


def test_cycle_clock_elapsed_is_real_time_capped():
    import time

    from gr00t_exp.robot.clock import MAX_STEP_PERIODS, CycleClock

    c = CycleClock(0.004)
    assert c.elapsed() == 0.004  # first command: one period
    time.sleep(0.01)
    assert 0.009 < c.elapsed() < 0.04
    assert c.elapsed() < 0.002  # right after: a catch-up step is tiny
    time.sleep(0.06)
    assert c.elapsed() == pytest.approx(MAX_STEP_PERIODS * 0.004)  # a stall: capped, the motion lags
