"""Shared test rig: fakes on loopback + a runner config for them."""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import numpy as np

from gr00t_exp.robot.clock import MAX_STEP_PERIODS
from gr00t_exp.robot.config import (
    CamerasConfig,
    CameraServerConfig,
    CameraSourceConfig,
    CameraSplit,
    CameraStream,
    RobotConfig,
)

ARM = ["shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_roll", "wrist_pitch", "wrist_yaw"]
FPS = 30.0


def modality(hand_dim: int) -> dict:
    """Unitree's arms-then-hands layout: 26-D (6 per hand) or the 28-D 7-per-hand one."""
    spans = {"left_arm": (0, 7), "right_arm": (7, 14)}
    spans["left_hand"] = (14, 14 + hand_dim)
    spans["right_hand"] = (14 + hand_dim, 14 + 2 * hand_dim)
    spec = {k: {"start": a, "end": b} for k, (a, b) in spans.items()}
    return {"state": spec, "action": dict(spec)}


def embodiment(video: bool = True, hand_dim: int | None = None, waist: bool = False):
    """Test embodiment; hand_dim=None: no modality layout (6-D hands by default); waist: also drive
    the 3 waist joints (key `waist`)."""
    keys = ["left_arm", "right_arm", "left_hand", "right_hand"] + (["waist"] if waist else [])
    return SimpleNamespace(
        name=f"g1_test_{hand_dim}" if hand_dim else "g1_test",
        state_keys=[f"state.{k}" for k in keys],
        action_keys=[f"action.{k}" for k in keys],
        video_keys=["video.cam_left_high"] if video else [],
        language_key="annotation.human.task_description",
        modality=modality(hand_dim) if hand_dim else None,
    )


def robot_cfg(domain_id: int, cam_port: int | None = None, **safety) -> RobotConfig:
    rc = RobotConfig()
    rc.dds.domain_id, rc.dds.interface = domain_id, "lo"
    rc.arm.weight_ramp_s = 0.2
    rc.arm.lowstate_timeout_s = 3.0
    rc.safety.confirm = False
    rc.safety.max_episode_s = 1.0
    rc.safety.policy_timeout_s = 0.5
    rc.safety.max_velocity = 2.0
    for k, v in safety.items():
        setattr(rc.safety, k, v)
    rc.control.fps = FPS
    rc.control.task = "wave"
    rc.hands.state_timeout_s = 0.2
    if cam_port is not None:
        rc.cameras = CamerasConfig(
            host="127.0.0.1",
            streams=[
                CameraStream(
                    port=cam_port,
                    splits=[CameraSplit("cam_left_high", 0, 64), CameraSplit("cam_right_high", 64, 128)],
                )
            ],
            stale_s=0.5,
            startup_timeout_s=3.0,
        )
    return rc


def camera_server_cfg(port: int) -> CameraServerConfig:
    return CameraServerConfig(
        bind=f"tcp://127.0.0.1:{port}", layout="stitched", fps=30.0, jpeg_quality=90,
        sources=[CameraSourceConfig("head", "synthetic", 128, 48)],
    )  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wave(t: np.ndarray, hand_dim: int = 6) -> dict[str, np.ndarray]:
    """A smooth, in-limits reference motion (rad, hands 0..1) as a function of time (s).

    hand_dim 7: a 7th hand channel (no Inspire finger) that ramps with time, 0.1 + 0.2 t."""
    t = np.asarray(t, float)[:, None]
    k = np.arange(7)[None]
    left = 0.3 * np.sin(2 * np.pi * 0.6 * t + 0.3 * k) * (k % 2 == 0) + 0.2 * (k == 3)
    right = -0.25 * np.sin(2 * np.pi * 0.6 * t + 0.2 * k) * (k % 2 == 1) + 0.2 * (k == 3)
    hand = 0.6 + 0.3 * np.sin(2 * np.pi * 0.5 * t + np.arange(6)[None])
    out = {"left_arm": left, "right_arm": right, "left_hand": hand, "right_hand": 1.0 - hand * 0.5}
    if hand_dim == 7:
        ramp = 0.1 + 0.2 * t
        out["left_hand"] = np.concatenate([hand, ramp], axis=1)
        out["right_hand"] = np.concatenate([1.0 - hand * 0.5, -ramp], axis=1)
    return out


class ScriptedPolicy:
    """A local policy with the PolicyClient/BasePolicy get_action interface, following `wave`.

    mode: ok | nan | inf (after `n` calls) | stall_after (raises after `n` calls, like a dead server) |
    block_after (blocks after `n` calls until `release` is set, like a hung server) |
    limits (shoulder rolls far out of range) | limits_high / limits_low (every arm joint at +-10 rad) |
    step (constant targets: left arm +`step`, right arm -`step`, waist 0)
    hand_dim: width of the hand keys; hand_scale multiplies the 6 finger values (e.g. 1000).
    on_call: {call number: function} run inside that call (e.g. send a signal mid-run).
    """

    def __init__(
        self,
        mode: str = "ok",
        n: int = 2,
        horizon: int = 16,
        hand_dim: int = 6,
        hand_scale=1.0,
        step: float = 0.6,
        on_call: dict | None = None,
    ):
        self.mode, self.n, self.h = mode, n, horizon
        self.hand_dim, self.hand_scale, self.step = hand_dim, hand_scale, step
        self.on_call = on_call or {}
        self.observed: list[dict] = []
        self.calls = 0
        self.call_times: list[float] = []  # time.monotonic() at the start of each call
        self.t_blocked: float | None = None  # time.time() when block_after started blocking
        self.release = threading.Event()
        self.t0 = None
        self.lock = threading.Lock()

    def get_modality_config(self) -> dict:
        return {
            "action": {
                "delta_indices": list(range(self.h)),
                "modality_keys": [f"action.{k}" for k in [*wave(np.zeros(1)), "waist"]],
            }
        }

    def get_action(self, obs: dict) -> dict:
        with self.lock:
            self.calls += 1
            calls = self.calls
            self.call_times.append(time.monotonic())
        assert obs["state.left_arm"].shape == (1, 7) and obs["state.left_hand"].shape == (1, self.hand_dim)
        assert obs["state.right_hand"].shape == (1, self.hand_dim)
        if calls in self.on_call:
            self.on_call[calls]()

        self.observed.append({k: v.copy() for k, v in obs.items() if k.startswith("state.")})
        if hasattr(os, "sched_getscheduler"):
            self.sched = os.sched_getscheduler(0)  # the policy thread's scheduling policy

        if self.mode == "stall_after" and calls > self.n:
            time.sleep(0.1)  # like a client whose server stopped answering
            raise TimeoutError("no reply within 100 ms")
        if self.mode == "block_after" and calls > self.n:
            self.t_blocked = time.time()
            self.release.wait(30.0)  # a hung call: returns only when the test lets it
            raise TimeoutError("released by the test")

        if self.t0 is None:
            self.t0 = time.monotonic()
        t = (time.monotonic() - self.t0) + np.arange(self.h) / FPS
        acts = {f"action.{k}": v.astype(np.float32) for k, v in wave(t, self.hand_dim).items()}
        for k in ("action.left_hand", "action.right_hand"):
            acts[k][:, :6] *= self.hand_scale
        if "state.waist" in obs:
            acts["action.waist"] = np.zeros((self.h, 3), np.float32)
        if self.mode in ("nan", "inf") and calls > self.n:
            acts["action.left_arm"][3, 2] = np.nan if self.mode == "nan" else np.inf
        if self.mode == "limits":
            acts["action.right_arm"][:, 1] = 3.0  # right shoulder roll upper limit is 1.5882
            acts["action.left_arm"][:, 1] = 3.0  # left shoulder roll upper limit is 2.2515
        if self.mode in ("limits_high", "limits_low"):
            far = 10.0 if self.mode == "limits_high" else -10.0
            for k in ("action.left_arm", "action.right_arm", "action.waist"):
                if k in acts:
                    acts[k][:] = far
        if self.mode == "step":
            acts["action.left_arm"][:] = self.step
            acts["action.right_arm"][:] = -self.step
        return acts


# -- what the fake robot received ----------------------------------------------------------------
UPPER = slice(12, 29)  # motor slots of the waist + arms (the runner's driven joints)


def received(g1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sender time s, commanded q of motors 12..28, blend weight) of every command the fake accepted."""
    rx = list(g1.received)
    t = np.array([r.t_src for r in rx])
    q = np.array([r.q[UPPER] for r in rx]).reshape(len(rx), 17)
    w = np.array([r.weight for r in rx])
    return t, q, w


def per_cycle_weight_step(rc: RobotConfig) -> float:
    return 1.0 / (rc.arm.weight_ramp_s * rc.control.command_hz)


def assert_graceful(res, rc: RobotConfig, g1=None) -> None:
    """The blend weight ramps (never jumps) and ends at 0: in the runner's log and, when given, at
    the fake robot (the weights it received)."""
    step = per_cycle_weight_step(rc) * 1.01 + 1e-6  # float32 on the wire
    assert res.weights[-1] == 0.0
    assert np.abs(np.diff(res.weights)).max() <= step
    if g1 is not None:
        deadline = time.monotonic() + 1.0  # the fake takes the runner's last command a step later
        while time.monotonic() < deadline and not (g1.received and g1.received[-1].weight == 0.0):
            time.sleep(0.01)
        _, _, w = received(g1)
        assert len(w) > 10 and w[-1] == 0.0 and g1.weight == 0.0, (len(w), w[-3:], g1.weight)
        # the fake keeps every command it got (a queue), so only a sample lost on loopback widens a step
        assert np.abs(np.diff(w)).max() <= step * 3 + 1e-6, (np.abs(np.diff(w)).max(), step)


def ramp_down_start(g1) -> float:
    """Sender time of the first command of the ramp-down (weight below the previous one)."""
    t, _, w = received(g1)
    i = int(np.flatnonzero(np.diff(w) < 0)[0]) + 1
    return float(t[i])


def assert_holds(g1, t_from: float, rc: RobotConfig, tol: float = 1e-3) -> int:
    """From t_from (sender time) on, the commanded joints moved at most the stopping distance
    (decelerating to a stop) and then stayed put. The filter brakes at max_acceleration over the
    time it is given per command (the elapsed time, at most MAX_STEP_PERIODS command periods), so a
    joint at speed v has stopped once v / max_acceleration of that time has passed: every command
    after that is one pose. Measured on the clock the filter runs on, so a host that runs the loop
    slowly does not fail it. Returns the command count."""
    t, q, _ = received(g1)
    sel = t >= t_from
    ts, qs = t[sel], q[sel]
    assert len(qs) >= 10, f"only {len(qs)} commands after {t_from:.3f}"
    travel = float(np.abs(qs - qs[0]).max())
    assert travel <= stopping_distance(rc), (travel, stopping_distance(rc))
    dt = np.diff(ts)
    period = 1.0 / rc.control.command_hz
    speed = np.abs(np.diff(qs, axis=0)).max(axis=1) / np.maximum(dt, period / 10)
    given = np.concatenate([[0.0], np.cumsum(np.minimum(dt, MAX_STEP_PERIODS * period))])
    # braking starts at the speed of the first commands (the fault is noticed within a few)
    v0 = min(float(speed[:5].max()), rc.safety.max_velocity)
    stopped = qs[given >= v0 / rc.safety.max_acceleration + 5 * period]
    assert len(stopped) >= 3, (
        f"the run ended {given[-1]:.3f} s after {t_from:.3f}, braking from {v0:.2f} rad/s"
    )
    assert np.ptp(stopped, axis=0).max() < tol, np.ptp(stopped, axis=0)
    return len(qs)


def stopping_distance(rc: RobotConfig) -> float:
    """How far a joint at max_velocity travels while braking at max_acceleration (+ float slack)."""
    return rc.safety.max_velocity**2 / (2.0 * rc.safety.max_acceleration) + 0.01


def assert_held(g1, t_from: float, t_to: float, tol: float = 2e-3) -> int:
    """The commanded joints stayed put between t_from and t_to (sender time); returns the count."""
    t, q, _ = received(g1)
    sel = (t >= t_from) & (t <= t_to)
    assert sel.sum() >= 3, f"only {sel.sum()} commands between {t_from:.3f} and {t_to:.3f}"
    assert np.ptp(q[sel], axis=0).max() < tol, np.ptp(q[sel], axis=0)
    return int(sel.sum())
