"""Fake Inspire hands on DDS: DFX (`rt/inspire/*`, 12 values 0..1) and FTP (`rt/inspire_hand/*/{l,r}`,
int 0..1000). Each echoes its commands as state with a first-order lag, starting open."""

from __future__ import annotations

import math
import threading
import time
from typing import Optional

import numpy as np

from gr00t_exp.robot.dds.channel import DdsContext


class _FakeHandsBase:
    rate_hz = 100.0

    def __init__(self, domain_id: int, interface: Optional[str] = "lo", tau_s: float = 0.05):
        self.ctx = DdsContext(domain_id, interface)
        self.tau_s = tau_s
        self.q = np.ones(12)  # [right 6 | left 6] as DFX, 1 = open
        self.target = np.ones(12)
        self.commands = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        dt = 1.0 / self.rate_hz
        while not self._stop.is_set():
            self._read()
            self.q += (1.0 - math.exp(-dt / self.tau_s)) * (self.target - self.q)
            self._publish()
            time.sleep(dt)

    def start(self):
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class FakeDfxHands(_FakeHandsBase):
    def __init__(self, domain_id: int, interface: Optional[str] = "lo", tau_s: float = 0.05):
        super().__init__(domain_id, interface, tau_s)
        from gr00t_exp.robot.dds.msgs_go import MotorCmds_, MotorState_, MotorStates_

        self._State, self._States = MotorState_, MotorStates_
        self.sub = self.ctx.subscriber("rt/inspire/cmd", MotorCmds_)
        self.pub = self.ctx.publisher("rt/inspire/state", MotorStates_)

    def _read(self) -> None:
        m = self.sub.latest()
        if m is not None and len(m.cmds) == 12:
            self.target = np.clip([c.q for c in m.cmds], 0.0, 1.0)
            self.commands += 1

    def _publish(self) -> None:
        self.pub.write(self._States(states=[self._State(q=float(v)) for v in self.q]))


class FakeFtpHands(_FakeHandsBase):
    def __init__(self, domain_id: int, interface: Optional[str] = "lo", tau_s: float = 0.05):
        super().__init__(domain_id, interface, tau_s)
        from gr00t_exp.robot.dds.msgs_inspire import inspire_hand_ctrl, inspire_hand_state

        self._State = inspire_hand_state
        self.subs = {s: self.ctx.subscriber(f"rt/inspire_hand/ctrl/{s}", inspire_hand_ctrl) for s in "lr"}
        self.pubs = {s: self.ctx.publisher(f"rt/inspire_hand/state/{s}", inspire_hand_state) for s in "lr"}

    # DFX-style internal array: right hand 0-5, left hand 6-11
    _SL = {"r": slice(0, 6), "l": slice(6, 12)}

    def _read(self) -> None:
        for s, sub in self.subs.items():
            m = sub.latest()
            if m is not None and len(m.angle_set) == 6:
                self.target[self._SL[s]] = np.clip(np.asarray(m.angle_set, float) / 1000.0, 0, 1)
                self.commands += 1

    def _publish(self) -> None:
        for s, pub in self.pubs.items():
            vals = [int(round(v * 1000)) for v in self.q[self._SL[s]]]
            pub.write(self._State(angle_act=vals, pos_act=vals))
