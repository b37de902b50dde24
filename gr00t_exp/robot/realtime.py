"""Real-time scheduling of the command thread (deploy.robot.control.realtime_priority / cpu_affinity).

On Linux, `sched_setscheduler(0, ...)` and `sched_setaffinity(0, ...)` act on the *calling thread*
only, so the command thread (the one running ControlLoop.run) is raised without touching the policy,
camera or DDS threads. Both are undone on exit: the runner's command thread is the main thread,
which carries on (recording, saving) after the run. Without the privilege (CAP_SYS_NICE or an
rtprio limit in /etc/security/limits.conf) the run goes on at normal priority with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Optional

log = logging.getLogger(__name__)


@contextlib.contextmanager
def realtime_thread(
    enabled: bool, priority: int = 50, cpus: Optional[list[int]] = None
) -> Iterator[dict[str, object]]:
    """Run the body with SCHED_FIFO `priority` (if enabled) and pinned to `cpus` (if given).

    Yields what was applied: {"fifo": bool, "cpus": set or None}.
    """
    applied: dict[str, object] = {"fifo": False, "cpus": None}
    old_policy = old_param = old_cpus = None
    if cpus:
        if not hasattr(os, "sched_setaffinity"):
            log.warning("deploy.robot.control.cpu_affinity is not supported on this OS; ignored")
        else:
            want = {int(c) for c in cpus}
            old_cpus = os.sched_getaffinity(0)
            try:
                os.sched_setaffinity(0, want)
                applied["cpus"] = want
                log.info("command thread pinned to CPUs %s", sorted(want))
            except OSError as e:
                old_cpus = None
                raise ValueError(
                    f"deploy.robot.control.cpu_affinity={sorted(want)} cannot be applied ({e}); "
                    f"allowed CPUs here: {sorted(os.sched_getaffinity(0))}"
                ) from e
    if enabled:
        if not hasattr(os, "sched_setscheduler"):
            log.warning(
                "deploy.robot.control.realtime_priority: SCHED_FIFO not available on this OS; normal priority"
            )
        else:
            lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
            if not lo <= int(priority) <= hi:
                raise ValueError(
                    f"deploy.robot.control.fifo_priority={priority} is outside SCHED_FIFO's range [{lo}, {hi}]"
                )
            old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(priority)))
                applied["fifo"] = True
                log.info("command thread runs SCHED_FIFO priority %d", priority)
            except OSError as e:
                old_policy = None
                log.warning(
                    "deploy.robot.control.realtime_priority=true but SCHED_FIFO was refused (%s): running at "
                    "normal priority. Grant it with `sudo setcap cap_sys_nice+ep $(readlink -f $(which python))` "
                    "or an `rtprio` line in /etc/security/limits.conf, or set realtime_priority=false",
                    e,
                )
    try:
        yield applied
    finally:
        if old_policy is not None:
            with contextlib.suppress(OSError):  # dropping back to SCHED_OTHER is always allowed
                os.sched_setscheduler(0, old_policy, old_param)
        if old_cpus is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, old_cpus)
