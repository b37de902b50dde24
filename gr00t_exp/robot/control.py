"""The control loop: a fixed-rate command thread and an asynchronous policy thread.

Command thread (deploy.robot.control.command_hz, 250 Hz): reads the newest rt/lowstate, samples
the chunk trajectory at the current time, runs it through the safety filter, publishes the arm
command (and the hands at their own rate), and owns the phases: ramp the arm_sdk weight 0 -> 1
holding the measured pose, run, ramp 1 -> 0 holding the last command. Every abnormal condition
ends in that ramp-down; nothing ever sets the weight abruptly.

Policy thread: builds the observation in the embodiment's keys, calls `policy.get_action`, checks
the reply, and pushes the chunk. It asks for the next chunk after `execute_steps` waypoints, or
earlier when the measured latency says the current chunk would run out first, so the command
thread never waits for the network.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from gr00t_exp.robot.arm import ArmIO, ModeMachineError, check_mode_machine
from gr00t_exp.robot.chunks import Trajectory
from gr00t_exp.robot.hands import OPEN, Hands, RateLimiter
from gr00t_exp.robot.layout import RobotLayout
from gr00t_exp.robot.realtime import realtime_thread
from gr00t_exp.robot.safety import JointLimits, MotionFilter, SafetyError, StopSignal, Watchdog, all_finite

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    reason: str = ""
    ok: bool = True  # False when the stop was caused by a fault
    cycles: int = 0
    chunks: int = 0
    policy_errors: int = 0
    events: list[str] = field(default_factory=list)
    periods: list[float] = field(default_factory=list)  # command-loop period, s
    lateness: list[float] = field(default_factory=list)  # wake-up time - scheduled time, s
    overruns: int = 0
    policy_latency: list[float] = field(default_factory=list)  # request round trip, s
    obs_to_cmd: list[float] = field(default_factory=list)  # observation -> first command using it, s
    weights: list[float] = field(default_factory=list)
    run_s: float = 0.0
    period_s: float = 0.004
    record_root: Optional[Any] = None  # dataset root when deploy.record=true
    realtime: dict[str, Any] = field(default_factory=dict)  # what realtime_thread applied

    def summary(self) -> dict[str, Any]:
        def pct(x, q):
            return float(np.percentile(np.asarray(x) * 1e3, q)) if len(x) else float("nan")

        return {
            "reason": self.reason,
            "ok": self.ok,
            "cycles": self.cycles,
            "chunks": self.chunks,
            "policy_errors": self.policy_errors,
            "overruns": self.overruns,
            "period_error_p99_ms": pct(np.abs(np.asarray(self.periods) - self.period_s), 99),
            "period_error_max_ms": pct(np.abs(np.asarray(self.periods) - self.period_s), 100),
            "lateness_p50_ms": pct(self.lateness, 50),
            "lateness_p99_ms": pct(self.lateness, 99),
            "policy_latency_p50_ms": pct(self.policy_latency, 50),
            "obs_to_cmd_p50_ms": pct(self.obs_to_cmd, 50),
            "obs_to_cmd_p99_ms": pct(self.obs_to_cmd, 99),
            "sched_fifo": bool(self.realtime.get("fifo", False)),
        }


class ControlLoop:
    RAMP_UP, RUN, RAMP_DOWN, DONE = "ramp_up", "run", "ramp_down", "done"

    def __init__(
        self,
        robot_cfg,
        layout: RobotLayout,
        arm: ArmIO,
        hands: Hands,
        policy,
        cameras=None,
        recorder=None,
        stop: Optional[StopSignal] = None,
        fps: float = 30.0,
    ):
        self.cfg = robot_cfg
        self.layout = layout
        self.arm, self.hands, self.policy, self.cameras, self.recorder = arm, hands, policy, cameras, recorder
        self.stop = stop or StopSignal()
        self.fps = float(fps)
        sc = robot_cfg.safety
        self.limits = JointLimits.from_config(robot_cfg.joints, layout.joint_names, sc.limit_margin)
        self.filter = MotionFilter(self.limits, sc.max_velocity, sc.max_acceleration)
        self.dt_cmd = 1.0 / float(robot_cfg.control.command_hz)
        self.lowstate_wd = Watchdog(sc.lowstate_stale_s)
        self.result = RunResult()
        self.phase = self.RAMP_UP
        self._lock = threading.Lock()
        self._measured_full: Optional[np.ndarray] = None
        self._t_measured = 0.0
        self._fault: Optional[str] = None
        self._latency = 0.05
        self._last_chunk_seen = 0
        self._chunk_t_obs: dict[int, float] = {}
        self.driven = layout.driven()
        hm = layout.hand_map
        # Dataset hand dims that drive no finger (never sent to the hands): the commanded value, and
        # what the observation reports for them (that value, or always extra_fill).
        self._extra_fill = np.full(2 * layout.n_extra, hm.extra_fill)
        self._extra_cmd = self._extra_fill.copy()
        self._extra_follow = hm.extra_state == "last_command"

    # -- helpers ---------------------------------------------------------------------------
    def fault(self, reason: str) -> None:
        """Stop because something is wrong (hold, then ramp down)."""
        if self._fault is None:
            self._fault = reason
            self.result.ok = False
            log.error("fault: %s -> holding and ramping down", reason)
            self.stop.stop(reason)

    def event(self, what: str) -> None:
        if not self.result.events or self.result.events[-1] != what:
            self.result.events.append(what)
            log.warning(what)

    def _measured_full_from(self, q_arm: np.ndarray) -> np.ndarray:
        full = np.empty(self.layout.size)
        full[: self.layout.n_joints] = q_arm
        # never measured: the last commanded value (extra_state=last_command) or extra_fill
        full[self.layout.extras] = self._extra_cmd if self._extra_follow else self._extra_fill
        hs = self.hands.state()
        if hs is not None:
            full[self.layout.left_hand], full[self.layout.right_hand] = hs[0], hs[1]
        else:
            full[self.layout.left_hand] = (
                self.hand_limiter.value[:6] if hasattr(self, "hand_limiter") else OPEN
            )
            full[self.layout.right_hand] = (
                self.hand_limiter.value[6:] if hasattr(self, "hand_limiter") else OPEN
            )
        return full

    # -- policy thread ---------------------------------------------------------------------
    def observation(self) -> tuple[dict, float, dict]:
        with self._lock:
            full, t_obs = self._measured_full.copy(), self._t_measured
        obs: dict[str, Any] = {}
        images = {}
        if self.layout.video_keys:
            frames = self.cameras.latest() if self.cameras is not None else {}
            for k in self.layout.video_keys:
                f = frames.get(k)
                if f is None or time.monotonic() - f.t_rx > self.cfg.cameras.stale_s:
                    raise _Stale(f"camera {k} stale or missing")
                obs[f"video.{k}"] = f.image[None]
                images[k] = f.image
        for k in self.layout.state_keys:
            obs[f"state.{k}"] = self.layout.read(full, k).astype(np.float32)[None]
        obs[self.layout.language_key] = [self.cfg.control.task]
        return obs, t_obs, images

    def chunk_from_actions(self, actions: dict, base: np.ndarray) -> np.ndarray:
        H = None
        out = None
        for k in self.layout.action_keys:
            a = actions.get(f"action.{k}", actions.get(k))
            if a is None:
                raise ValueError(f"policy reply lacks action.{k} (got {sorted(actions)})")
            a = np.asarray(a, dtype=np.float64)
            if a.ndim == 3 and a.shape[0] == 1:
                a = a[0]
            if a.ndim == 1 and self.layout.dim(k) == 1:
                a = a[:, None]
            if a.ndim != 2 or a.shape[1] != self.layout.dim(k):
                raise ValueError(f"action.{k} has shape {a.shape}, expected (horizon, {self.layout.dim(k)})")
            if not all_finite(a):
                raise ValueError(f"action.{k} contains NaN/inf")
            if H is None:
                H = a.shape[0]
                out = np.repeat(base[None], H, axis=0)
            elif a.shape[0] != H:
                raise ValueError(f"action.{k} has horizon {a.shape[0]}, others {H}")
            self.layout.write(out, k, a)  # dataset units -> robot units (hands: Inspire 0..1)
        hand = self.layout.hands
        out[:, hand] = np.clip(out[:, hand], 0.0, 1.0)
        return out

    def _policy_loop(self, traj: Trajectory, base: np.ndarray, ready: threading.Event) -> None:
        cc, sc = self.cfg.control, self.cfg.safety
        dt_wp = 1.0 / self.fps
        next_req = 0.0
        errors = 0
        ready.wait()
        t_ready = time.monotonic()
        while not self.stop.event.is_set():
            now = time.monotonic()
            # The robot holds the last waypoint once a chunk runs out; after policy_timeout_s of
            # holding without a new chunk, stop.
            starved_since = max(t_ready, now + traj.time_left(now))
            if now - starved_since > sc.policy_timeout_s:
                self.fault(f"no usable policy chunk for {sc.policy_timeout_s:.1f} s (policy timeout)")
                break
            if now < next_req:
                self.stop.event.wait(min(next_req - now, 0.05))
                continue
            try:
                if self.lowstate_wd.stale():
                    raise _Stale("lowstate stale")
                obs, t_obs, _ = self.observation()
            except _Stale as e:
                self.event(f"pausing the policy: {e}")
                self.stop.event.wait(0.02)
                continue
            t_req = time.monotonic()
            try:
                actions = self.policy.get_action(obs)
                lat = time.monotonic() - t_req
                chunk = self.chunk_from_actions(actions, base)
            except Exception as e:  # timeouts, server errors, malformed replies: all hold
                errors += 1
                self.result.policy_errors += 1
                self.event(f"policy call failed ({type(e).__name__}: {e}); holding")
                if errors >= sc.max_policy_errors:
                    self.fault(f"{errors} consecutive policy failures (last: {e})")
                    break
                continue
            errors = 0
            self.result.policy_latency.append(lat)
            # Latency estimate for scheduling: the slowest of the recent replies.
            recent = self.result.policy_latency[-10:]
            self._latency = max(recent)
            seq = traj.push(chunk, t_obs, dt_wp, time.monotonic())
            self._chunk_t_obs[seq] = t_obs
            self.result.chunks += 1
            horizon = len(chunk)
            by_steps = t_obs + min(cc.execute_steps, horizon - 1) * dt_wp
            by_latency = t_obs + (horizon - 1) * dt_wp - self._latency - cc.latency_margin_s
            next_req = min(by_steps, by_latency)

    # -- command thread --------------------------------------------------------------------
    def _read_state(self) -> None:
        st = self.arm.poll()
        if st is None:
            return
        q = self.arm.measured(st)
        if not all_finite(q):
            self.fault("rt/lowstate carries NaN/inf joint positions")
            return
        try:
            check_mode_machine(st.mode_machine, self.arm.mode_machine)
        except ModeMachineError as e:
            self.fault(f"mode_machine changed during the run: {e}")
            return
        now = time.monotonic()
        self.lowstate_wd.feed(now)
        full = self._measured_full_from(q)
        with self._lock:
            self._measured_full, self._t_measured = full, now

    def run(self) -> RunResult:
        """Ramp up, run, ramp down on the calling thread (the command thread)."""
        with contextlib.ExitStack() as stack:
            return self._run(stack)

    def _run(self, stack: contextlib.ExitStack) -> RunResult:
        cc, sc, hc = self.cfg.control, self.cfg.safety, self.cfg.hands
        res = self.result
        old_switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)  # other Python threads must not hold the GIL for 5 ms
        st = self.arm.last_state
        q0 = self.arm.measured(st)
        self.lowstate_wd.feed()
        self.filter.reset(q0)
        hs = self.hands.state()
        h0 = np.r_[hs[0], hs[1]] if hs is not None else np.r_[OPEN, OPEN]
        self.hand_limiter = RateLimiter(hc.max_stroke_per_s, h0)
        full0 = np.r_[q0, h0, self._extra_cmd]
        self._measured_full, self._t_measured = full0.copy(), time.monotonic()
        traj = Trajectory(full0, cc.blend_s)
        ready = threading.Event()
        pth = threading.Thread(
            target=self._policy_loop, args=(traj, full0.copy(), ready), name="policy", daemon=True
        )
        pth.start()

        hand_every = max(1, round(float(cc.command_hz) / float(hc.rate_hz)))
        cmd_arm = q0.copy()
        hand_cmd = h0.copy()
        last_hand_sent: Optional[np.ndarray] = None
        weight = 0.0
        t_start = time.monotonic()
        t_run = None
        rec_dt = 1.0 / float(self.recorder.fps) if self.recorder is not None else None
        next_rec = None
        T = self.dt_cmd
        res.period_s = T
        w_step = T / self.cfg.arm.weight_ramp_s if self.cfg.arm.weight_ramp_s > 0 else 1.0
        i = 0
        nxt = time.monotonic()
        prev_wake = None
        try:
            # Real-time scheduling only now, after the policy thread exists: threads inherit the
            # creator's policy and affinity, and the policy thread must stay SCHED_OTHER. Undone
            # (ExitStack) after that thread is joined.
            self.result.realtime = stack.enter_context(
                realtime_thread(cc.realtime_priority, cc.fifo_priority, cc.cpu_affinity)
            )
            while self.phase != self.DONE:
                # -- fixed-rate wait: sleep most of the way, spin the last few hundred µs
                nxt += T
                while True:
                    d = nxt - time.monotonic()
                    if d <= 0:
                        break
                    if d > 0.0006:
                        time.sleep(d - 0.0005)
                now = time.monotonic()
                late = now - nxt
                if late > T:  # overran a whole period: resynchronise instead of bursting
                    res.overruns += 1
                    nxt = now
                res.lateness.append(late)
                if prev_wake is not None:
                    res.periods.append(now - prev_wake)
                prev_wake = now
                i += 1

                self._read_state()
                with self._lock:
                    measured_arm = self._measured_full[: self.layout.n_joints].copy()
                age = self.lowstate_wd.age(now)
                if age > sc.lowstate_abort_s:
                    self.fault(f"rt/lowstate silent for {age:.2f} s")
                stale = age > sc.lowstate_stale_s
                if stale:
                    self.event("rt/lowstate stale: holding the last command")

                if self.phase == self.RAMP_UP:
                    # Per-command steps (not wall time): a late cycle never makes the weight jump.
                    weight = min(1.0, weight + w_step)
                    cmd_arm = self.filter.step(q0, T)
                    if self.stop.event.is_set():
                        self.phase = self.RAMP_DOWN
                    elif weight >= 1.0:
                        self.phase, t_run = self.RUN, now
                        next_rec = now
                        ready.set()
                elif self.phase == self.RUN:
                    if now - t_run > sc.max_episode_s:
                        self.stop.stop(f"max episode duration {sc.max_episode_s:.1f} s reached")
                    if self.stop.event.is_set():
                        self.phase = self.RAMP_DOWN
                    target, seq = traj.sample(now)
                    if seq != self._last_chunk_seen:
                        self._last_chunk_seen = seq
                        t_obs = self._chunk_t_obs.pop(seq, None)
                        if t_obs is not None:
                            res.obs_to_cmd.append(now - t_obs)
                    try:
                        cmd_arm = self.filter.step(cmd_arm if stale else target[: self.layout.n_joints], T)
                    except SafetyError as e:
                        self.fault(str(e))
                        cmd_arm = self.filter.step(cmd_arm, T)
                    if not stale:
                        err = np.abs(cmd_arm - measured_arm)
                        if err.max() > sc.max_tracking_error:
                            j = self.layout.joint_names[int(err.argmax())]
                            self.fault(
                                f"tracking error {err.max():.3f} rad on {j} > safety.max_tracking_error"
                            )
                    hand_cmd = self.hand_limiter.step(target[self.layout.hands], T)
                    self._extra_cmd = target[self.layout.extras].copy()
                    if next_rec is not None and now >= next_rec and self.recorder is not None:
                        self._record(now - t_run, hand_cmd, cmd_arm)
                        next_rec += rec_dt
                elif self.phase == self.RAMP_DOWN:
                    weight = max(0.0, weight - w_step)
                    cmd_arm = self.filter.step(cmd_arm, T)  # hold (decelerates smoothly)
                    if hc.open_on_stop:
                        hand_cmd = self.hand_limiter.step(np.r_[OPEN, OPEN], T)
                    if weight <= 0.0:
                        self.phase = self.DONE

                self.arm.publish(cmd_arm, weight)
                res.weights.append(weight)
                if i % hand_every == 0 and (
                    last_hand_sent is None
                    or np.abs(hand_cmd - last_hand_sent).max() > hc.deadband
                    or self.phase == self.DONE
                ):
                    self.hands.command(hand_cmd[:6], hand_cmd[6:])
                    last_hand_sent = hand_cmd.copy()
                res.cycles += 1
        finally:
            self.stop.event.set()
            ready.set()
            pth.join(timeout=5)
            sys.setswitchinterval(old_switch)
        res.reason = self.stop.reason or "done"
        res.run_s = time.monotonic() - t_start
        return res

    def _record(self, t: float, hand_cmd: np.ndarray, cmd_arm: np.ndarray) -> None:
        with self._lock:
            measured = self._measured_full.copy()
        executed = measured.copy()
        executed[: self.layout.n_joints] = cmd_arm
        executed[self.layout.hands] = hand_cmd
        executed[self.layout.extras] = self._extra_cmd
        frames = self.cameras.latest() if self.cameras is not None else {}
        images = {k: frames[k].image for k in self.layout.video_keys if k in frames}
        self.recorder.add(
            t,
            {k: self.layout.read(measured, k) for k in self.layout.state_keys},
            {k: self.layout.read(executed, k) for k in self.layout.action_keys},
            images,
        )


class _Stale(Exception):
    pass
