"""A fake G1 on DDS: publishes `rt/lowstate` at 500 Hz and applies `rt/arm_sdk` with weight blending.

Joint model: each motor tracks its applied target with a first-order lag (time constant `tau_s`).
The applied target of an upper-body joint is `w * q_cmd + (1 - w) * q_controller`, where w is the
commanded `motor_cmd[29].q` and q_controller the pose Unitree's controller holds (the pose at
start). Commands with a wrong CRC or a `mode_machine` other than the robot's are ignored and
counted, as the real robot does. Faults: `stop_publishing`, `nan` (NaN joint positions),
`report_mode_machine` (publish another value), `mode_machine` changed while running (commands
with the old value are then ignored), `reject_commands` (ignore every command, e.g. the robot in
another mode), `corrupt_crc` (publish states whose CRC does not match).

Every accepted rt/arm_sdk command is logged in `received` with the writer's DDS source timestamp,
so tests measure what the robot was sent per unit of the sender's time (catch-up bursts included:
the reader keeps a queue, not just the newest sample).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from gr00t_exp.robot.dds.channel import DdsContext
from gr00t_exp.robot.dds.crc import lowcmd_crc, lowstate_crc
from gr00t_exp.robot.dds.msgs_hg import ARM_SDK_WEIGHT_INDEX, NUM_MOTORS, LowCmd_, LowState_

UPPER_BODY = list(range(12, 29))
CMD_QUEUE = 64  # commands kept between two steps (the runner sends at most a few per step)


@dataclass
class Received:
    t_src: float  # the writer's source timestamp, s (wall clock)
    q: np.ndarray  # commanded q of motors 0..28 (as sent, before blending)
    weight: float  # motor_cmd[29].q


class FakeG1:
    def __init__(
        self,
        domain_id: int,
        interface: Optional[str] = "lo",
        mode_machine: int = 5,
        rate_hz: float = 500.0,
        tau_s: float = 0.02,
        initial_q: Optional[np.ndarray] = None,
        seal_state: bool = True,
    ):
        self.ctx = DdsContext(domain_id, interface)
        self.pub = self.ctx.publisher("rt/lowstate", LowState_)
        self.sub_arm = self.ctx.subscriber("rt/arm_sdk", LowCmd_, depth=CMD_QUEUE)
        self.sub_low = self.ctx.subscriber("rt/lowcmd", LowCmd_, depth=CMD_QUEUE)
        self.mode_machine = mode_machine
        self.report_mode_machine = mode_machine
        self.rate_hz = rate_hz
        self.tau_s = tau_s
        self.q = np.zeros(NUM_MOTORS) if initial_q is None else np.asarray(initial_q, float).copy()
        self.dq = np.zeros(NUM_MOTORS)
        self.q_controller = self.q.copy()  # what Unitree's controller holds with weight 0
        self.q_cmd = self.q.copy()
        self.weight = 0.0
        self.seal_state = seal_state
        # fault injection
        self.stop_publishing = False
        self.nan = False
        self.reject_commands = False
        self.corrupt_crc = False
        # observations for tests
        self.tick = 0
        self.commands = 0
        self.bad_crc = 0
        self.bad_mode_machine = 0
        self.weights: list[tuple[float, float]] = []  # (t, weight) of each accepted command
        self.received: list[Received] = []  # every accepted rt/arm_sdk command
        self.rejected = 0  # commands ignored while reject_commands is set
        self.history: list[tuple[float, np.ndarray]] = []  # (t, q) at each published state
        self.cmd_history: list[tuple[float, np.ndarray]] = []  # (t, applied target) at each step
        self.record_history = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- command intake --------------------------------------------------------------------
    def _apply(self, cmd: LowCmd_, blended: bool, now: float, t_src: float) -> None:
        if cmd.crc != lowcmd_crc(cmd):
            self.bad_crc += 1
            return
        if cmd.mode_machine != self.mode_machine:
            self.bad_mode_machine += 1
            return
        if self.reject_commands:
            self.rejected += 1
            return
        self.commands += 1
        if blended:
            w = float(min(max(cmd.motor_cmd[ARM_SDK_WEIGHT_INDEX].q, 0.0), 1.0))
            self.weight = w
            self.weights.append((now, w))
            if self.record_history:
                q = np.array([cmd.motor_cmd[i].q for i in range(29)])
                self.received.append(Received(t_src, q, w))
            for i in UPPER_BODY:
                m = cmd.motor_cmd[i]
                target = m.q if m.mode == 1 and m.kp > 0 else self.q_controller[i]
                self.q_cmd[i] = w * target + (1.0 - w) * self.q_controller[i]
        else:
            for i in range(29):
                m = cmd.motor_cmd[i]
                if m.mode == 1 and m.kp > 0:
                    self.q_cmd[i] = m.q

    def step(self, dt: float) -> None:
        now = time.monotonic()
        for sub, blended in ((self.sub_arm, True), (self.sub_low, False)):
            for cmd, t_src_ns in sub.take_all():
                with self._lock:
                    self._apply(cmd, blended, now, t_src_ns * 1e-9)
        with self._lock:
            a = 1.0 - math.exp(-dt / self.tau_s)
            q_new = self.q + a * (self.q_cmd - self.q)
            self.dq = (q_new - self.q) / dt
            self.q = q_new
        self.tick += 1
        if self.stop_publishing:
            return
        self.pub.write(self.state_msg())
        if self.record_history:
            self.history.append((now, self.q.copy()))
            self.cmd_history.append((now, self.q_cmd.copy()))

    def state_msg(self) -> LowState_:
        s = LowState_()
        s.mode_machine = self.report_mode_machine
        s.tick = self.tick * 2  # ms at 500 Hz
        for i in range(NUM_MOTORS):
            m = s.motor_state[i]
            m.q = float("nan") if self.nan else float(self.q[i])
            m.dq = float(self.dq[i])
            m.mode = 1
        if self.seal_state:
            s.crc = lowstate_crc(s)
        if self.corrupt_crc:
            s.crc ^= 0x1  # one flipped bit, as a corrupting link would
        return s

    # -- lifecycle -------------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        nxt = last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self.step(
                min(max(now - last, 1e-4), 0.05)
            )  # real elapsed time: a loaded host lags, it does not slow physics
            last = now
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()

    def start(self) -> FakeG1:
        self._thread = threading.Thread(target=self._run, name="fake_g1", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> FakeG1:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
