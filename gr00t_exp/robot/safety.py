"""Safety layer of the runner: joint limits, velocity/acceleration clamps, non-finite rejection,
watchdogs (lowstate age, policy deadline, tracking error), operator confirmation and signal-driven
shutdown.

Everything that decides whether a joint target is sent lives here, so it can be tested without
DDS. The control loop applies, in this order: non-finite check -> limits -> velocity (with the
stopping distance, so a clamped joint decelerates into its target instead of overshooting) ->
acceleration -> limits again (a clamp never pushes past a limit). The clamps work on the time that
really elapsed since the previous command, so a late cycle followed by a quick catch-up cycle
moves no further than the limits allow over that time.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


class SafetyError(RuntimeError):
    """A condition that must stop the motion (the loop holds, then ramps down)."""


@dataclass
class JointLimits:
    names: list[str]
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def from_config(cls, joints: Mapping, names: Sequence[str], margin: float) -> JointLimits:
        """Per-joint URDF limits pulled `margin` rad inward; each joint uses its own entry."""
        lower, upper = [], []
        for n in names:
            if n not in joints:
                raise KeyError(f"joint {n!r} is not in deploy.robot.joints (add its index and limits there)")
            lo, hi = float(joints[n].lower), float(joints[n].upper)
            if not hi - lo > 2 * margin:
                raise ValueError(
                    f"deploy.robot.joints.{n}: range [{lo}, {hi}] is not wider than 2 x "
                    f"deploy.robot.safety.limit_margin ({margin}); fix the limits or the margin"
                )
            lower.append(lo + margin)
            upper.append(hi - margin)
        return cls(list(names), np.asarray(lower), np.asarray(upper))

    def clip(self, q: np.ndarray) -> np.ndarray:
        return np.clip(q, self.lower, self.upper)

    def violations(self, q: np.ndarray, tol: float = 0.0) -> list[str]:
        bad = (q < self.lower - tol) | (q > self.upper + tol)
        return [
            f"{self.names[i]}={q[i]:+.3f} not in [{self.lower[i]:+.3f}, {self.upper[i]:+.3f}]"
            for i in np.flatnonzero(bad)
        ]


def all_finite(x: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(x)))


class MotionFilter:
    """Turns arbitrary joint targets into a limited, velocity- and acceleration-clamped command."""

    def __init__(self, limits: JointLimits, max_velocity: float, max_acceleration: float):
        if max_velocity <= 0 or max_acceleration <= 0:
            raise ValueError("deploy.robot.safety.max_velocity and max_acceleration must be > 0")
        self.limits = limits
        self.vmax = float(max_velocity)
        self.amax = float(max_acceleration)
        self.q: np.ndarray | None = None
        self.v: np.ndarray | None = None

    def reset(self, q: np.ndarray) -> None:
        """Seed with the measured pose (zero velocity)."""
        self.q = np.asarray(q, dtype=np.float64).copy()
        self.v = np.zeros_like(self.q)

    def step(self, target: np.ndarray, dt: float, vmax: float | None = None) -> np.ndarray:
        """The next command, `dt` s (the time elapsed since the previous one) after it."""
        if self.q is None:
            raise SafetyError("MotionFilter used before reset() with the measured pose")
        target = np.asarray(target, dtype=np.float64)
        if not all_finite(target):
            raise SafetyError("non-finite joint target")
        vmax = self.vmax if vmax is None else min(vmax, self.vmax)
        err = self.limits.clip(target) - self.q
        # Fastest speed that can still stop at the target decelerating by amax*dt per step
        # (discrete form of sqrt(2 a |err|): n steps of a*dt cover a*dt^2*n(n+1)/2).
        adt = self.amax * dt
        n_stop = (np.sqrt(1.0 + 8.0 * np.abs(err) / (adt * dt)) - 1.0) / 2.0
        speed = np.minimum(np.minimum(np.abs(err) / dt, vmax), n_stop * adt)
        v_des = np.sign(err) * speed
        dv = np.clip(v_des - self.v, -self.amax * dt, self.amax * dt)
        v = self.v + dv
        q = self.limits.clip(self.q + v * dt)
        self.v = (q - self.q) / dt
        self.q = q
        return q.copy()


class Watchdog:
    """Time since the last `feed()`; `stale()` when older than `timeout_s`."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic):
        self.timeout_s = float(timeout_s)
        self.clock = clock
        self.last: float | None = None

    def feed(self, t: float | None = None) -> None:
        self.last = self.clock() if t is None else t

    def age(self, now: float | None = None) -> float:
        if self.last is None:
            return float("inf")
        return (self.clock() if now is None else now) - self.last

    def stale(self, now: float | None = None) -> bool:
        return self.age(now) > self.timeout_s


class PolicyDeadline:
    """The policy watchdog, checked by the command thread so a blocked policy call cannot hide it.

    The policy thread marks each request's start and end; the command thread calls `check` every
    cycle with the time the action queue ran dry. Either condition stops the run:
    - a request outstanding for longer than `timeout_s` (the call blocks: the robot holds the last
      waypoint meanwhile, since the trajectory holds it once the chunk runs out);
    - the queue empty for longer than `timeout_s` (requests fail, or the policy is paused).
    """

    def __init__(self, timeout_s: float):
        if not timeout_s > 0:
            raise ValueError(f"deploy.robot.safety.policy_timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._t_request: float | None = None

    def started(self, t: float) -> None:
        with self._lock:
            self._t_request = t

    def finished(self) -> None:
        with self._lock:
            self._t_request = None

    def outstanding(self, now: float) -> float:
        """Seconds the current request has been waiting (0 when none is outstanding)."""
        with self._lock:
            t = self._t_request
        return 0.0 if t is None else now - t

    def check(self, now: float, dry_since: float | None) -> str | None:
        """A failure reason, or None. `dry_since`: when the action queue ran out (None: it has not)."""
        waiting = self.outstanding(now)
        if waiting > self.timeout_s:
            return (
                f"policy timeout: get_action outstanding for {waiting:.2f} s > "
                f"deploy.robot.safety.policy_timeout_s={self.timeout_s:g}"
            )
        if dry_since is not None and now - dry_since > self.timeout_s:
            return (
                f"policy timeout: no usable chunk for {now - dry_since:.2f} s after the last ran out "
                f"(deploy.robot.safety.policy_timeout_s={self.timeout_s:g})"
            )
        return None


def check_client_timeout(client_timeout_ms: float | None, policy_timeout_s: float) -> None:
    """The runner's rule for the policy client's own timeout: at most `policy_timeout_s`.

    The command loop enforces policy_timeout_s itself; the client timeout only frees the policy
    thread. Longer than the watchdog, a stuck request would outlive the ramp-down and keep the
    client busy while the runner shuts down. The shipped default (deploy.policy.timeout_ms 1500
    against policy_timeout_s 3.0) leaves room for one retry before the watchdog fires.
    """
    if client_timeout_ms is None:
        return
    if float(client_timeout_ms) > 1000.0 * float(policy_timeout_s):
        raise ValueError(
            f"deploy.policy.timeout_ms={client_timeout_ms:g} is longer than "
            f"deploy.robot.safety.policy_timeout_s={policy_timeout_s:g} s: set deploy.policy.timeout_ms <= "
            f"{1000.0 * float(policy_timeout_s):g} (e.g. half of it) or raise policy_timeout_s"
        )


class TrackingMonitor:
    """Detects a robot that does not follow: |command - measured| above `max_error` on some joint
    for longer than `duration_s` (commands rejected, e.g. a mode_machine change after the start,
    a motor fault, the robot in another mode). Brief excursions (a fast move the PD loop lags
    behind) do not count."""

    def __init__(self, names: Sequence[str], max_error: float, duration_s: float):
        if not max_error > 0 or duration_s < 0:
            raise ValueError(
                "deploy.robot.safety.max_tracking_error must be > 0 and tracking_error_s >= 0, "
                f"got {max_error} / {duration_s}"
            )
        self.names = list(names)
        self.max_error = float(max_error)
        self.duration_s = float(duration_s)
        self.since: float | None = None  # first time of the current excursion
        self.peak = 0.0  # largest error seen (for the run's summary)

    def reset(self) -> None:
        self.since = None

    def update(self, commanded: np.ndarray, measured: np.ndarray, now: float) -> str | None:
        err = np.abs(np.asarray(commanded) - np.asarray(measured))
        worst = float(err.max()) if err.size else 0.0
        self.peak = max(self.peak, worst)
        if worst <= self.max_error:
            self.since = None
            return None
        if self.since is None:
            self.since = now
        if now - self.since < self.duration_s:
            return None
        j = self.names[int(err.argmax())]
        return (
            f"robot does not follow: tracking error {worst:.3f} rad on {j} > "
            f"deploy.robot.safety.max_tracking_error={self.max_error:g} for {now - self.since:.2f} s "
            "(commands rejected? check mode_machine, the robot's mode, rt/arm_sdk)"
        )


def confirm(prompt: str, input_fn: Callable[[str], str] = input) -> bool:
    """Ask the operator; only an explicit 'y'/'yes' continues."""
    try:
        answer = input_fn(prompt)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


class StopSignal:
    """SIGINT/SIGTERM set an event (graceful ramp-down) instead of killing the process.

    A second signal restores the default handler so a stuck process can still be interrupted.
    Handlers are only installed from the main thread (Python's rule); elsewhere `stop()` is the way.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self._previous: dict[int, object] = {}

    def stop(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        log.warning("%s received: ramping down (send it again to abort immediately)", name)
        self.stop(f"signal {name}")
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
