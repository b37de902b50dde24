"""The control loop: a fixed-rate command thread and an asynchronous policy thread.

Command thread (deploy.robot.control.command_hz, 250 Hz): reads the newest rt/lowstate, samples
the chunk trajectory at the current time, runs it through the safety filter, publishes the arm
command (and the hands at their own rate), and owns the phases: ramp the arm_sdk weight 0 -> 1
holding the measured pose, run, ramp 1 -> 0 holding the last command. Every abnormal condition
ends in that ramp-down; nothing ever sets the weight abruptly. The command thread also runs every
watchdog that must not depend on another thread: lowstate age, the policy deadline (a blocked
get_action cannot hide it), the robot not following (tracking error), the episode length.
Each command is computed from the time elapsed since the previous one, so a late cycle and the
catch-up cycle after it keep the velocity and acceleration limits.

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
from gr00t_exp.robot.clock import CycleClock
from gr00t_exp.robot.hands import OPEN, Hands, RateLimiter
from gr00t_exp.robot.layout import RobotLayout
from gr00t_exp.robot.realtime import realtime_thread
from gr00t_exp.robot.safety import (
    JointLimits,
    MotionFilter,
    PolicyDeadline,
    SafetyError,
    StopSignal,
    TrackingMonitor,
    Watchdog,
    all_finite,
)

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
    lowstate_crc_errors: int = 0  # rt/lowstate samples refused for a CRC mismatch
    tracking_error_max: float = 0.0  # largest |command - measured| while running, rad

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
            "lowstate_crc_errors": self.lowstate_crc_errors,
            "tracking_error_max": self.tracking_error_max,
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
        self.deadline = PolicyDeadline(sc.policy_timeout_s)
        self.tracking = TrackingMonitor(layout.joint_names, sc.max_tracking_error, sc.tracking_error_s)
        self.clock = CycleClock(self.dt_cmd)
        self.result = RunResult()
        self._event_seen: set[str] = set()
        self.phase = self.RAMP_UP
        # Command-thread state (the commanded arm pose and hands, the blend weight, phase times).
        self.cmd_arm = np.zeros(layout.n_joints)
        self.hand_cmd = np.r_[OPEN, OPEN]
        self.hand_limiter = RateLimiter(robot_cfg.hands.max_stroke_per_s, self.hand_cmd)  # reseeded at start
        self.weight = 0.0
        self._last_hand_sent: Optional[np.ndarray] = None
        self._q0 = self.cmd_arm.copy()
        self._t_start = self._t_run = self._next_rec = 0.0
        self._w_step = 1.0
        self._hand_every = 1
        self._old_switch = sys.getswitchinterval()
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
        """Record (and log) a notable condition once per run: conditions that come and go every
        cycle (stale state, refused CRCs, a dry queue) would otherwise flood the log."""
        if what not in self._event_seen:
            self._event_seen.add(what)
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
        else:  # no hand state: the commanded (rate-limited) values
            full[self.layout.left_hand] = self.hand_limiter.value[:6]
            full[self.layout.right_hand] = self.hand_limiter.value[6:]
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
        """Requests chunks until the stop. Never enforces a timeout itself: a blocked get_action
        would hide it; the command thread watches `self.deadline` instead."""
        cc, sc = self.cfg.control, self.cfg.safety
        dt_wp = 1.0 / self.fps
        next_req = 0.0
        errors = 0
        ready.wait()
        while not self.stop.event.is_set():
            now = time.monotonic()
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
            self.deadline.started(t_req)
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
            finally:
                self.deadline.finished()
            if self.stop.event.is_set():
                break  # a reply that arrives after the stop is never executed
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

    # -- command thread: state in ------------------------------------------------------------
    def _read_state(self) -> None:
        st = self.arm.poll()
        if self.arm.crc_errors != self.result.lowstate_crc_errors:
            self.result.lowstate_crc_errors = self.arm.crc_errors
            self.event("rt/lowstate failed its CRC check: state refused")
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

    def _lowstate_stale(self, now: float) -> bool:
        """Lowstate watchdog: stale -> the caller holds; silent past lowstate_abort_s -> stop."""
        sc = self.cfg.safety
        age = self.lowstate_wd.age(now)
        if age > sc.lowstate_abort_s:
            refused = self.arm.crc_errors
            why = f" ({refused} states refused for a bad CRC)" if refused else ""
            self.fault(f"rt/lowstate silent for {age:.2f} s{why}")
        stale = age > sc.lowstate_stale_s
        if stale:
            self.event("rt/lowstate stale: holding the last command")
        return stale

    def _dry_since(self, now: float, traj: Trajectory) -> Optional[float]:
        """When the action queue ran out (the trajectory holds its last waypoint since), or None."""
        if traj.seq == 0:
            return self._t_run  # no chunk yet: holding the start pose since the run began
        t_end = now + traj.time_left(now)
        if t_end >= now:
            return None
        self.event("action queue ran dry: holding the last waypoint")
        return max(self._t_run, t_end)

    # -- command thread: phases ----------------------------------------------------------------
    def run(self) -> RunResult:
        """Ramp up, run, ramp down on the calling thread (the command thread)."""
        cc = self.cfg.control
        with contextlib.ExitStack() as stack:
            traj, pth, ready = self._start()
            try:
                # Real-time scheduling only now, after the policy thread exists: threads inherit the
                # creator's policy and affinity, and the policy thread must stay SCHED_OTHER. Undone
                # (ExitStack) after that thread is joined.
                self.result.realtime = stack.enter_context(
                    realtime_thread(cc.realtime_priority, cc.fifo_priority, cc.cpu_affinity)
                )
                while self.phase != self.DONE:
                    self._cycle(self.clock.wait(), traj, ready)
            finally:
                self._finish(pth, ready)
        return self.result

    def _start(self) -> tuple[Trajectory, threading.Thread, threading.Event]:
        """Seed the filter and the commands with the measured pose; start the policy thread."""
        cc, hc = self.cfg.control, self.cfg.hands
        self._old_switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)  # other Python threads must not hold the GIL for 5 ms
        q0 = self.arm.measured(self.arm.last_state)
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
        self._q0, self.cmd_arm, self.hand_cmd = q0, q0.copy(), h0.copy()
        self._t_start = time.monotonic()
        self.result.period_s = self.dt_cmd
        ramp_s = self.cfg.arm.weight_ramp_s
        # Per-command steps (not wall time): a late cycle never makes the weight jump.
        self._w_step = self.dt_cmd / ramp_s if ramp_s > 0 else 1.0
        self._hand_every = max(1, round(float(cc.command_hz) / float(hc.rate_hz)))
        return traj, pth, ready

    def _cycle(self, now: float, traj: Trajectory, ready: threading.Event) -> None:
        """One command: read the state, run the watchdogs and the phase, publish."""
        self._read_state()
        with self._lock:
            measured_arm = self._measured_full[: self.layout.n_joints].copy()
        stale = self._lowstate_stale(now)
        dt = self.clock.elapsed()  # the time since the previous command, not the nominal period
        if self.phase == self.RAMP_UP:
            self._ramp_up(now, dt, ready)
        elif self.phase == self.RUN:
            self._track(now, dt, stale, measured_arm, traj)
        else:
            self._ramp_down(dt)
        self._publish()

    def _ramp_up(self, now: float, dt: float, ready: threading.Event) -> None:
        self.weight = min(1.0, self.weight + self._w_step)
        self.cmd_arm = self.filter.step(self._q0, dt)
        if self.stop.event.is_set():
            self.phase = self.RAMP_DOWN
        elif self.weight >= 1.0:
            self.phase, self._t_run, self._next_rec = self.RUN, now, now
            ready.set()

    def _track(self, now: float, dt: float, stale: bool, measured_arm: np.ndarray, traj: Trajectory) -> None:
        """RUN: follow the trajectory through the filter, unless a watchdog says stop or hold."""
        sc = self.cfg.safety
        if now - self._t_run > sc.max_episode_s:
            self.stop.stop(f"max episode duration {sc.max_episode_s:.1f} s reached")
        reason = self.deadline.check(now, self._dry_since(now, traj))
        if reason:
            self.fault(reason)
        if self.stop.event.is_set():
            self.phase = self.RAMP_DOWN
            self._ramp_down(dt)
            return
        target, seq = traj.sample(now)
        self._note_first_command(seq, now)
        n = self.layout.n_joints
        try:
            self.cmd_arm = self.filter.step(self.cmd_arm if stale else target[:n], dt)
        except SafetyError as e:
            self.fault(str(e))
            self.cmd_arm = self.filter.step(self.cmd_arm, dt)
        if stale:
            self.tracking.reset()  # the measurement is old: an excursion cannot be timed
        else:
            reason = self.tracking.update(self.cmd_arm, measured_arm, now)
            if reason:
                self.fault(reason)
        self.hand_cmd = self.hand_limiter.step(target[self.layout.hands], dt)
        self._extra_cmd = target[self.layout.extras].copy()
        if self.recorder is not None and now >= self._next_rec:
            self._record(now - self._t_run, self.hand_cmd, self.cmd_arm)
            self._next_rec += 1.0 / float(self.recorder.fps)

    def _ramp_down(self, dt: float) -> None:
        self.weight = max(0.0, self.weight - self._w_step)
        self.cmd_arm = self.filter.step(self.cmd_arm, dt)  # hold (decelerates smoothly)
        if self.cfg.hands.open_on_stop:
            self.hand_cmd = self.hand_limiter.step(np.r_[OPEN, OPEN], dt)
        if self.weight <= 0.0:
            self.phase = self.DONE

    def _note_first_command(self, seq: int, now: float) -> None:
        """Observation -> first command latency of each new chunk."""
        if seq != self._last_chunk_seen:
            self._last_chunk_seen = seq
            t_obs = self._chunk_t_obs.pop(seq, None)
            if t_obs is not None:
                self.result.obs_to_cmd.append(now - t_obs)

    def _publish(self) -> None:
        hc, res = self.cfg.hands, self.result
        # Stamped with the time the command was computed for (the clock the limits hold on).
        self.arm.publish(self.cmd_arm, self.weight, self.clock.mark_ns)
        res.weights.append(self.weight)
        res.cycles += 1
        if res.cycles % self._hand_every == 0 and (
            self._last_hand_sent is None
            or np.abs(self.hand_cmd - self._last_hand_sent).max() > hc.deadband
            or self.phase == self.DONE
        ):
            self.hands.command(self.hand_cmd[:6], self.hand_cmd[6:])
            self._last_hand_sent = self.hand_cmd.copy()

    def _finish(self, pth: threading.Thread, ready: threading.Event) -> None:
        res = self.result
        self.stop.event.set()
        ready.set()
        # A policy call may still block: the client's own timeout (<= policy_timeout_s, see
        # safety.check_client_timeout) frees it by then; a call that never returns is left behind
        # (daemon thread) rather than holding the process after the arms were released.
        pth.join(timeout=max(1.0, self.cfg.safety.policy_timeout_s))
        if pth.is_alive():
            self.event("the policy call is still blocked after the ramp-down: its thread is left behind")
        sys.setswitchinterval(self._old_switch)
        res.reason = self.stop.reason or "done"
        res.run_s = time.monotonic() - self._t_start
        res.lateness, res.periods, res.overruns = self.clock.lateness, self.clock.periods, self.clock.overruns
        res.lowstate_crc_errors = self.arm.crc_errors
        res.tracking_error_max = self.tracking.peak

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
