"""Arms (and waist) through `rt/arm_sdk` (or `rt/lowcmd` in debug mode).

`ArmIO` reads the measured pose from `rt/lowstate` (refusing, and counting, states whose CRC does
not match: a corrupt state must not become a measured pose), checks `mode_machine` against the
configured robot model, and publishes one LowCmd_ per call with the blend weight in `motor_cmd[29].q`
(sealed with the CRC right before writing). Ramping the weight is the control loop's job (it owns
the clock); `weight_ramp` gives the schedule.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np

from gr00t_exp.robot.dds.crc import lowstate_crc, seal_lowcmd
from gr00t_exp.robot.dds.msgs_hg import ARM_SDK_WEIGHT_INDEX, LowCmd_, LowState_

MODE_MACHINE_MODELS = {
    2: "g1_29dof (old, unrevisioned)",
    4: "g1_23dof_rev_1_0",
    5: "g1_29dof_rev_1_0",
    6: "g1_29dof_lock_waist_rev_1_0",
    9: "g1_dual_arm",
    10: "g1_23dof_mode_10",
    18: "g1 with 2-DoF head",
}


class ModeMachineError(RuntimeError):
    pass


def weight_ramp(t: float, duration: float, start: float = 0.0, end: float = 1.0) -> float:
    """Linear blend weight at `t` s into a ramp from `start` to `end` over `duration` s."""
    if duration <= 0:
        return end
    a = min(max(t / duration, 0.0), 1.0)
    return start + (end - start) * a


def check_mode_machine(reported: int, expected: int) -> None:
    if int(reported) != int(expected):
        raise ModeMachineError(
            f"rt/lowstate reports mode_machine={reported} ({MODE_MACHINE_MODELS.get(int(reported), 'unknown model')}) "
            f"but deploy.robot.arm.expected_mode_machine={expected} "
            f"({MODE_MACHINE_MODELS.get(int(expected), 'unknown model')}). The robot ignores commands with the "
            "wrong value and the joint layout may differ: set expected_mode_machine to the robot's model "
            "after checking the joint table (docs/g1_deployment.md#mode_machine)"
        )


class ArmIO:
    def __init__(
        self,
        ctx,
        joints: Mapping,
        names: Sequence[str],
        topic: str = "rt/arm_sdk",
        dry_run: bool = False,
        verify_crc: bool = True,
    ):
        if topic not in ("rt/arm_sdk", "rt/lowcmd"):
            raise ValueError(
                f"deploy.robot.arm.topic={topic!r}: use rt/arm_sdk (normal) or rt/lowcmd (debug mode)"
            )
        self.names = list(names)
        for n in names:
            if n not in joints:
                raise KeyError(f"joint {n!r} is not in deploy.robot.joints (add its index, limits and gains)")
        self.index = np.array([int(joints[n].index) for n in names])
        self.kp = np.array([float(joints[n].kp) for n in names])
        self.kd = np.array([float(joints[n].kd) for n in names])
        if np.any(self.index == ARM_SDK_WEIGHT_INDEX) or np.any(self.index < 0) or np.any(self.index >= 29):
            raise ValueError(
                f"deploy.robot.joints: motor indices must be in 0..28, got {self.index.tolist()}"
            )
        self.topic = topic
        self.dry_run = dry_run
        self.pub = None if dry_run else ctx.publisher(topic, LowCmd_)
        self.sub = ctx.subscriber("rt/lowstate", LowState_)
        self.mode_machine: Optional[int] = None
        self.last_state: Optional[LowState_] = None
        self.t_state: Optional[float] = None
        self._cmd = LowCmd_()
        self.sent = 0
        self.last_cmd: Optional[LowCmd_] = None
        self.verify_crc = verify_crc
        self.crc_errors = 0  # rt/lowstate samples refused for a CRC mismatch
        self.states = 0  # rt/lowstate samples accepted

    # -- state -----------------------------------------------------------------------------
    def poll(self) -> Optional[LowState_]:
        """Newest valid lowstate since the last poll (None if nothing new, or it failed its CRC)."""
        s = self.sub.latest()
        if s is None:
            return None
        if self.verify_crc and s.crc != lowstate_crc(s):
            # Treated as not received: the staleness watchdog holds, then stops, if it persists.
            self.crc_errors += 1
            return None
        self.states += 1
        self.last_state, self.t_state = s, time.monotonic()
        return s

    def wait_state(self, timeout_s: float) -> LowState_:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            s = self.poll()
            if s is not None:
                return s
            time.sleep(0.002)
        if self.crc_errors:
            raise TimeoutError(
                f"no valid rt/lowstate within {timeout_s:.1f} s: {self.crc_errors} samples failed the CRC "
                "check (another publisher with other message types on the domain, or a corrupting link?); "
                "deploy.robot.safety.verify_lowstate_crc=false turns the check off"
            )
        raise TimeoutError(
            f"no rt/lowstate within {timeout_s:.1f} s: is the robot on, the DDS domain "
            "(deploy.robot.dds.domain_id, 0 on the robot) and interface (deploy.robot.dds.interface) right?"
        )

    def measured(self, state: Optional[LowState_] = None) -> np.ndarray:
        s = state or self.last_state
        ms = s.motor_state
        return np.array([ms[i].q for i in self.index], dtype=np.float64)

    # -- command ---------------------------------------------------------------------------
    def publish(self, q: np.ndarray, weight: float, t_ns: Optional[int] = None) -> LowCmd_:
        """One command: joint targets `q` (names order) with the blend weight; returns the sealed msg.

        t_ns: the time (ns since the epoch) the command was computed for, sent as its DDS source
        timestamp, so a capture of rt/arm_sdk shows the motion on the clock the limits hold on."""
        if self.mode_machine is None:
            raise ModeMachineError("ArmIO.publish before mode_machine was checked (call check())")
        cmd = self._cmd
        cmd.mode_pr = 0
        cmd.mode_machine = self.mode_machine
        w = float(min(max(weight, 0.0), 1.0))
        lowcmd = self.topic == "rt/lowcmd"
        for k, i in enumerate(self.index):
            m = cmd.motor_cmd[i]
            m.mode = 1
            m.q = float(q[k])
            m.dq = 0.0
            m.tau = 0.0
            # In debug mode there is no blend weight: fade the stiffness instead, keep the damping.
            m.kp = float(self.kp[k] * (w if lowcmd else 1.0))
            m.kd = float(self.kd[k])
        if not lowcmd:
            cmd.motor_cmd[ARM_SDK_WEIGHT_INDEX].q = w
        seal_lowcmd(cmd)
        if self.pub is not None:
            if self.pub.write(cmd, t_ns):
                self.sent += 1
        self.last_cmd = cmd
        return cmd

    def check(self, state: LowState_, expected_mode_machine: int) -> None:
        check_mode_machine(state.mode_machine, expected_mode_machine)
        self.mode_machine = int(state.mode_machine)
