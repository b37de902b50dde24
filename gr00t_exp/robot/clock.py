"""Fixed-rate wake-ups for the command thread, with the timing statistics a run reports.

`CycleClock.wait()` sleeps most of the way to the next tick and spins the last few hundred
microseconds (sleep alone overshoots by a scheduler tick). A cycle that wakes a little late keeps
the schedule, so the next one comes early ("catch-up"); one late by more than a whole period
resynchronises instead of bursting. Either way the next command must be computed from the time
that really elapsed (`elapsed()`), never from the nominal period: that is what keeps the velocity
and acceleration limits true over every time window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

SPIN_S = 0.0005  # spin this long before the tick instead of sleeping
MAX_STEP_PERIODS = 10.0  # one command covers at most this many periods of motion


@dataclass
class CycleClock:
    period_s: float
    lateness: list[float] = field(default_factory=list)  # wake-up time - scheduled time, s
    periods: list[float] = field(default_factory=list)  # time between consecutive wake-ups, s
    overruns: int = 0  # cycles late by more than a period (schedule reset)
    _next: float | None = None
    _prev_wake: float | None = None
    _prev_mark: float | None = None
    mark_ns: int = 0  # wall-clock time (ns since the epoch) of the last `elapsed()` call
    # wall clock - monotonic clock, fixed at creation: the wall-clock mark derives from the same
    # reading as the elapsed time, so a preemption between two clock reads cannot skew them apart
    _wall_offset: float = field(default_factory=lambda: time.time() - time.monotonic())

    def wait(self) -> float:
        """Block until the next tick; returns the wake-up time (time.monotonic())."""
        if self._next is None:
            self._next = time.monotonic()
        self._next += self.period_s
        while True:
            d = self._next - time.monotonic()
            if d <= 0:
                break
            if d > SPIN_S + 0.0001:
                time.sleep(d - SPIN_S)
        now = time.monotonic()
        late = now - self._next
        if late > self.period_s:  # overran a whole period: resynchronise instead of bursting
            self.overruns += 1
            self._next = now
        self.lateness.append(late)
        if self._prev_wake is not None:
            self.periods.append(now - self._prev_wake)
        self._prev_wake = now
        return now

    def elapsed(self, max_factor: float = MAX_STEP_PERIODS) -> float:
        """Seconds since the previous call (the first call: one period), capped at `max_factor`
        periods (40 ms at 250 Hz): a loaded host running the loop at 25 Hz still moves at the
        limits exactly; after a longer stall the motion lags (slower, never a jump)."""
        now = time.monotonic()
        self.mark_ns = int((now + self._wall_offset) * 1e9)
        prev, self._prev_mark = self._prev_mark, now
        if prev is None:
            return self.period_s
        return min(max(now - prev, 1e-5), max_factor * self.period_s)
