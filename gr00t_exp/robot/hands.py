"""Inspire hands: the dataset representation and the two DDS variants.

Dataset / policy side (one representation): per hand 6 floats in [0, 1], 1 = open, finger order
pinky, ring, middle, index, thumb-bend, thumb-rotation.

- DFX (serial; Unitree's `inspire_g1` service): `rt/inspire/cmd` / `rt/inspire/state`, unitree_go
  MotorCmds_/MotorStates_ with 12 entries, **right hand first** (0-5 right, 6-11 left), `q` in [0, 1].
- FTP (Modbus; inspire_hand_ws driver): per hand `rt/inspire_hand/ctrl/{l,r}` /
  `rt/inspire_hand/state/{l,r}`, int16 0..1000 (1000 = open), angle mode.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

FINGERS = ("pinky", "ring", "middle", "index", "thumb_bend", "thumb_rotation")
N = len(FINGERS)
OPEN = np.ones(N)


# -- mappings (pure) ---------------------------------------------------------------------------
def dfx_from_hands(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """12 DFX `q` values: right hand in 0-5, left in 6-11, clipped to [0, 1]."""
    return np.clip(np.concatenate([np.asarray(right, float), np.asarray(left, float)]), 0.0, 1.0)


def hands_from_dfx(q12: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) from the 12 DFX state values."""
    q12 = np.asarray(q12, float)
    if q12.shape != (2 * N,):
        raise ValueError(f"DFX hand state must have 12 values, got {q12.shape}")
    return q12[N:].copy(), q12[:N].copy()


def ftp_from_hand(h: np.ndarray) -> list[int]:
    """One FTP hand command: int 0..1000 (1000 = open)."""
    return [int(round(v)) for v in np.clip(np.asarray(h, float), 0.0, 1.0) * 1000.0]


def hand_from_ftp(values) -> np.ndarray:
    return np.clip(np.asarray(values, float) / 1000.0, 0.0, 1.0)


class RateLimiter:
    """Limits each value's change to `max_per_s` per second (hands: strokes per second)."""

    def __init__(self, max_per_s: float, initial: np.ndarray):
        self.max_per_s = float(max_per_s)
        self.value = np.asarray(initial, float).copy()

    def step(self, target: np.ndarray, dt: float) -> np.ndarray:
        target = np.clip(np.asarray(target, float), 0.0, 1.0)
        d = self.max_per_s * dt
        self.value = self.value + np.clip(target - self.value, -d, d)
        return self.value.copy()


# -- DDS adapters ------------------------------------------------------------------------------
class Hands:
    """Interface: publish (left, right) targets, read the latest (left, right) state."""

    kind = "none"

    def command(self, left: np.ndarray, right: np.ndarray) -> None:  # pragma: no cover - interface
        pass

    def state(self) -> Optional[tuple[np.ndarray, np.ndarray, float]]:
        """(left, right, t_rx) of the newest state, or None when none has arrived."""
        return None


class NoHands(Hands):
    def __init__(self) -> None:
        self._last = (OPEN.copy(), OPEN.copy())

    def command(self, left, right) -> None:
        self._last = (np.asarray(left, float), np.asarray(right, float))

    def state(self):
        # No hand hardware: report the commanded values so observations stay well-formed.
        return self._last[0], self._last[1], time.monotonic()


class DfxHands(Hands):
    kind = "dfx"
    CMD_TOPIC = "rt/inspire/cmd"
    STATE_TOPIC = "rt/inspire/state"

    def __init__(self, ctx, dry_run: bool = False):
        from gr00t_exp.robot.dds.msgs_go import MotorCmd_, MotorCmds_, MotorStates_

        self._MotorCmd, self._MotorCmds = MotorCmd_, MotorCmds_
        self.dry_run = dry_run
        self.pub = None if dry_run else ctx.publisher(self.CMD_TOPIC, MotorCmds_)
        self.sub = ctx.subscriber(self.STATE_TOPIC, MotorStates_)
        self._state: Optional[tuple[np.ndarray, np.ndarray, float]] = None

    def command(self, left, right) -> None:
        q = dfx_from_hands(left, right)
        if self.pub is not None:
            self.pub.write(self._MotorCmds(cmds=[self._MotorCmd(q=float(v)) for v in q]))

    def state(self):
        msg = self.sub.latest()
        if msg is not None and len(msg.states) >= 2 * N:
            left, right = hands_from_dfx(np.array([s.q for s in msg.states[: 2 * N]]))
            self._state = (left, right, time.monotonic())
        return self._state


class FtpHands(Hands):
    kind = "ftp"

    def __init__(self, ctx, dry_run: bool = False):
        from gr00t_exp.robot.dds.msgs_inspire import MODE_ANGLE, inspire_hand_ctrl, inspire_hand_state

        self._ctrl, self._mode = inspire_hand_ctrl, MODE_ANGLE
        self.dry_run = dry_run
        self.pubs = (
            {}
            if dry_run
            else {s: ctx.publisher(f"rt/inspire_hand/ctrl/{s}", inspire_hand_ctrl) for s in ("l", "r")}
        )
        self.subs = {s: ctx.subscriber(f"rt/inspire_hand/state/{s}", inspire_hand_state) for s in ("l", "r")}
        self._h: dict[str, tuple[np.ndarray, float]] = {}

    def command(self, left, right) -> None:
        for side, h in (("l", left), ("r", right)):
            if side in self.pubs:
                self.pubs[side].write(self._ctrl(angle_set=ftp_from_hand(h), mode=self._mode))

    def state(self):
        for side, sub in self.subs.items():
            msg = sub.latest()
            if msg is not None and len(msg.angle_act) == N:
                self._h[side] = (hand_from_ftp(msg.angle_act), time.monotonic())
        if len(self._h) < 2:
            return None
        return self._h["l"][0], self._h["r"][0], min(self._h["l"][1], self._h["r"][1])


def make_hands(kind: str, ctx, dry_run: bool = False) -> Hands:
    if kind == "dfx":
        return DfxHands(ctx, dry_run)
    if kind == "ftp":
        return FtpHands(ctx, dry_run)
    if kind == "none":
        return NoHands()
    raise ValueError(
        f"deploy.robot.hands.kind={kind!r} is unknown: use dfx (serial RH56DFX, rt/inspire/*), "
        "ftp (tactile RH56DFTP, rt/inspire_hand/*) or none"
    )
