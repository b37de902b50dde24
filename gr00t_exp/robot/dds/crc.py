"""CRC32 of unitree_hg LowCmd_ / LowState_ (docs/g1_interfaces.md).

The message is packed little-endian into its fixed C layout (1004 bytes for LowCmd_, 2092 for
LowState_), cut into 32-bit words without the trailing `crc` word, and run through CRC-32 with
polynomial 0x04C11DB7, init 0xFFFFFFFF, each word fed MSB first, no final XOR.

That is CRC-32/MPEG-2 over the words written big-endian. It is computed here with zlib's
(reflected) CRC-32 on bit-reversed bytes, which gives the same value bit-reversed, so a command
costs a few microseconds instead of a Python bit loop; `crc32_words_reference` is the plain
bitwise algorithm the tests compare against.
"""

from __future__ import annotations

import zlib

import numpy as np

from gr00t_exp.robot.dds.msgs_hg import NUM_MOTORS, LowCmd_, LowState_

POLY = 0x04C11DB7

MOTOR_CMD_DTYPE = np.dtype(
    {
        "names": ["mode", "q", "dq", "tau", "kp", "kd", "reserve"],
        "formats": ["u1", "<f4", "<f4", "<f4", "<f4", "<f4", "<u4"],
        "offsets": [0, 4, 8, 12, 16, 20, 24],
        "itemsize": 28,
    }
)
LOWCMD_DTYPE = np.dtype(
    {
        "names": ["mode_pr", "mode_machine", "motor_cmd", "reserve", "crc"],
        "formats": ["u1", "u1", (MOTOR_CMD_DTYPE, (NUM_MOTORS,)), ("<u4", (4,)), "<u4"],
        "offsets": [0, 1, 4, 984, 1000],
        "itemsize": 1004,
    }
)
MOTOR_STATE_DTYPE = np.dtype(
    {
        "names": [
            "mode",
            "q",
            "dq",
            "ddq",
            "tau_est",
            "temperature",
            "vol",
            "sensor",
            "motorstate",
            "reserve",
        ],
        "formats": [
            "u1",
            "<f4",
            "<f4",
            "<f4",
            "<f4",
            ("<i2", (2,)),
            "<f4",
            ("<u4", (2,)),
            "<u4",
            ("<u4", (4,)),
        ],
        "offsets": [0, 4, 8, 12, 16, 20, 24, 28, 36, 40],
        "itemsize": 56,
    }
)
IMU_DTYPE = np.dtype(
    {
        "names": ["quaternion", "gyroscope", "accelerometer", "rpy", "temperature"],
        "formats": [("<f4", (4,)), ("<f4", (3,)), ("<f4", (3,)), ("<f4", (3,)), "<i2"],
        "offsets": [0, 16, 28, 40, 52],
        "itemsize": 56,
    }
)
LOWSTATE_DTYPE = np.dtype(
    {
        "names": [
            "version", "mode_pr", "mode_machine", "tick", "imu_state", "motor_state",
            "wireless_remote", "reserve", "crc",
        ],
        "formats": [
            ("<u4", (2,)), "u1", "u1", "<u4", IMU_DTYPE, (MOTOR_STATE_DTYPE, (NUM_MOTORS,)),
            ("u1", (40,)), ("<u4", (4,)), "<u4",
        ],
        "offsets": [0, 8, 9, 12, 16, 72, 2032, 2072, 2088],
        "itemsize": 2092,
    }
)  # fmt: skip
assert LOWCMD_DTYPE.itemsize == 1004 and LOWSTATE_DTYPE.itemsize == 2092

_BITREV8 = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], dtype=np.uint8)


def _bitrev32(x: int) -> int:
    return int(f"{x:032b}"[::-1], 2)


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 of a byte string (poly 0x04C11DB7, init 0xFFFFFFFF, unreflected, no xorout)."""
    rev = _BITREV8[np.frombuffer(data, dtype=np.uint8)].tobytes()
    # zlib's CRC-32 is the reflected twin with init and final XOR 0xFFFFFFFF: undo the final XOR.
    return _bitrev32((~zlib.crc32(rev)) & 0xFFFFFFFF)


def crc32_words(words: np.ndarray) -> int:
    """Unitree's CRC over uint32 words (poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no xorout)."""
    return crc32_mpeg2(np.ascontiguousarray(words, dtype="<u4").astype(">u4").tobytes())


def crc32_words_reference(words) -> int:
    """The documented bitwise algorithm, word by word (slow; used by tests)."""
    crc = 0xFFFFFFFF
    for w in words:
        w = int(w) & 0xFFFFFFFF
        for bit in range(31, -1, -1):
            top = crc & 0x80000000
            crc = (crc << 1) & 0xFFFFFFFF
            if top:
                crc ^= POLY
            if (w >> bit) & 1:
                crc ^= POLY
    return crc


def pack_lowcmd(msg: LowCmd_) -> np.ndarray:
    """The 1004-byte C layout of `msg` as a 0-d structured array."""
    rec = np.zeros((), dtype=LOWCMD_DTYPE)
    rec["mode_pr"] = msg.mode_pr
    rec["mode_machine"] = msg.mode_machine
    mc = rec["motor_cmd"]
    cmds = msg.motor_cmd
    mc["mode"] = [c.mode for c in cmds]
    mc["q"] = [c.q for c in cmds]
    mc["dq"] = [c.dq for c in cmds]
    mc["tau"] = [c.tau for c in cmds]
    mc["kp"] = [c.kp for c in cmds]
    mc["kd"] = [c.kd for c in cmds]
    mc["reserve"] = [c.reserve for c in cmds]
    rec["reserve"] = msg.reserve
    rec["crc"] = msg.crc
    return rec


def _u8_array(value) -> np.ndarray:
    """A uint8[N] field as numpy: cyclonedds delivers received uint8 arrays as `bytes`, locally built
    messages hold lists of ints."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(value), dtype=np.uint8)
    return np.asarray(value, dtype=np.uint8)


def pack_lowstate(msg: LowState_) -> np.ndarray:
    """The 2092-byte C layout of `msg` as a 0-d structured array."""
    rec = np.zeros((), dtype=LOWSTATE_DTYPE)
    rec["version"] = msg.version
    rec["mode_pr"] = msg.mode_pr
    rec["mode_machine"] = msg.mode_machine
    rec["tick"] = msg.tick
    imu = msg.imu_state
    ri = rec["imu_state"]
    ri["quaternion"] = imu.quaternion
    ri["gyroscope"] = imu.gyroscope
    ri["accelerometer"] = imu.accelerometer
    ri["rpy"] = imu.rpy
    ri["temperature"] = imu.temperature
    ms = rec["motor_state"]
    states = msg.motor_state
    for name in ("mode", "q", "dq", "ddq", "tau_est", "vol", "motorstate"):
        ms[name] = [getattr(s, name) for s in states]
    ms["temperature"] = [s.temperature for s in states]
    ms["sensor"] = [s.sensor for s in states]
    ms["reserve"] = [s.reserve for s in states]
    rec["wireless_remote"] = _u8_array(msg.wireless_remote)
    rec["reserve"] = msg.reserve
    rec["crc"] = msg.crc
    return rec


def _crc_of_record(rec: np.ndarray) -> int:
    words = np.frombuffer(rec.tobytes(), dtype="<u4")
    return crc32_words(words[:-1])  # the last word is the crc field itself


def lowcmd_crc(msg: LowCmd_) -> int:
    return _crc_of_record(pack_lowcmd(msg))


def lowstate_crc(msg: LowState_) -> int:
    return _crc_of_record(pack_lowstate(msg))


def seal_lowcmd(msg: LowCmd_) -> LowCmd_:
    """Set `msg.crc`; call after the last field change, right before writing."""
    msg.crc = lowcmd_crc(msg)
    return msg
