"""realtime_thread: SCHED_FIFO + CPU affinity on the calling thread only, undone on exit; a clear
warning (and normal priority) when the OS refuses."""

import logging
import os
import threading

import pytest

from gr00t_exp.robot.realtime import realtime_thread

linux = pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux scheduling API")


def _in_thread(fn):
    out = {}

    def body():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            out["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join(5)
    if "error" in out:
        raise out["error"]
    return out["value"]


@linux
def test_fifo_and_affinity_apply_to_this_thread_and_are_restored():
    cpu = min(os.sched_getaffinity(0))

    go, seen = threading.Event(), {}

    def other_thread():  # started before: must stay untouched
        go.wait(5)
        seen["policy"] = os.sched_getscheduler(0)

    def body():
        before = (os.sched_getscheduler(0), os.sched_getaffinity(0))
        t = threading.Thread(target=other_thread)
        t.start()
        with realtime_thread(True, 10, [cpu]) as rt:
            inside = (os.sched_getscheduler(0), os.sched_getaffinity(0))
            go.set()
            t.join(5)
        after = (os.sched_getscheduler(0), os.sched_getaffinity(0))
        return before, inside, after, rt, seen["policy"]

    before, inside, after, rt, other = _in_thread(body)
    assert inside[1] == {cpu} and rt["cpus"] == {cpu}
    if rt["fifo"]:  # permitted here (root / CAP_SYS_NICE)
        assert inside[0] == os.SCHED_FIFO
    else:
        assert inside[0] == before[0]
    assert other == before[0]
    assert after == before


@linux
def test_refused_fifo_warns_and_continues(monkeypatch, caplog):
    def refuse(*a):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with caplog.at_level(logging.WARNING), realtime_thread(True, 50) as rt:
        assert rt["fifo"] is False
    assert "SCHED_FIFO was refused" in caplog.text and "realtime_priority" in caplog.text


@linux
def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="fifo_priority"), realtime_thread(True, 1000):
        pass
    with pytest.raises(ValueError, match="cpu_affinity"), realtime_thread(False, 50, [4096]):
        pass
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
