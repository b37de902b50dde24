"""Safety layer of the runner: joint limits, velocity/acceleration clamps, non-finite rejection,
watchdogs, operator confirmation and signal-driven shutdown.

Everything that decides whether a joint target is sent lives here, so it can be tested without
DDS. The control loop applies, in this order: non-finite check -> limits -> velocity (with the
stopping distance, so a clamped joint decelerates into its target instead of overshooting) ->
acceleration -> limits again (a clamp never pushes past a limit).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gr00t_exp.robot.config import jattr

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
            lo, hi = float(jattr(joints[n], "lower")), float(jattr(joints[n], "upper"))
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
