"""Action-chunk execution in time: waypoints at the dataset fps, sampled at the command rate.

A chunk predicted from an observation taken at `t_obs` places waypoint k at `t_obs + k / fps`
(action index 0 is the action for the observed step). `sample(t)` interpolates linearly between
waypoints and holds the last one once the chunk has run out (the policy-stall behaviour: hold the
pose, never fall). A new chunk replaces the old one with a linear cross-fade over `blend_s`
starting at its arrival, so chunk boundaries do not jump; waypoints whose time has already passed
when the chunk arrives are simply never sampled (latency compensation).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Chunk:
    waypoints: np.ndarray  # (H, D)
    t0: float  # time of waypoint 0 (the observation time)
    dt: float  # waypoint spacing (1 / fps)
    seq: int = 0

    @property
    def t_end(self) -> float:
        return self.t0 + (len(self.waypoints) - 1) * self.dt

    def sample(self, t: float) -> np.ndarray:
        x = (t - self.t0) / self.dt
        n = len(self.waypoints)
        if x <= 0:
            return self.waypoints[0].copy()
        if x >= n - 1:
            return self.waypoints[-1].copy()
        i = int(x)
        a = x - i
        return (1.0 - a) * self.waypoints[i] + a * self.waypoints[i + 1]


class Trajectory:
    """Thread-safe: the policy thread `push`es chunks, the command thread `sample`s."""

    def __init__(self, hold: np.ndarray, blend_s: float = 0.1):
        self.blend_s = float(blend_s)
        self._lock = threading.Lock()
        self._cur = Chunk(np.asarray(hold, float)[None].copy(), 0.0, 1.0, seq=0)
        self._prev: Optional[Chunk] = None
        self._blend_t0 = 0.0
        self._seq = 0

    def push(self, waypoints: np.ndarray, t0: float, dt: float, now: float) -> int:
        with self._lock:
            self._seq += 1
            self._prev, self._cur = self._cur, Chunk(np.asarray(waypoints, float), t0, dt, self._seq)
            self._blend_t0 = now
            return self._seq

    def sample(self, t: float) -> tuple[np.ndarray, int]:
        """(target at time t, seq of the chunk now in charge)."""
        with self._lock:
            cur, prev, tb = self._cur, self._prev, self._blend_t0
        x = cur.sample(t)
        if prev is not None and self.blend_s > 0 and t < tb + self.blend_s:
            a = max(0.0, (t - tb) / self.blend_s)
            x = (1.0 - a) * prev.sample(t) + a * x
        return x, cur.seq

    def time_left(self, t: float) -> float:
        with self._lock:
            return self._cur.t_end - t

    @property
    def seq(self) -> int:
        return self._seq
