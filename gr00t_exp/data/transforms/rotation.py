"""Rotation representation conversions (numpy, batched over leading dims).

Conventions: quaternions are scalar-first (w, x, y, z); rotation_6d is the first two rows of the
rotation matrix, flattened (the pytorch3d convention, Zhou et al. 2019); axis_angle is the
rotation vector (axis * angle); `euler_angles_<order>` takes the angles in the order the letters
name them (r = roll about x, p = pitch about y, y = yaw about z), applied as extrinsic rotations
in that order, e.g. rpy -> R = Rz(yaw) @ Ry(pitch) @ Rx(roll).
"""

from __future__ import annotations

import numpy as np

EULER_ORDERS = ("rpy", "ryp", "pry", "pyr", "yrp", "ypr")
TYPES = ("quaternion", "axis_angle", "rotation_6d", "matrix", *(f"euler_angles_{o}" for o in EULER_ORDERS))
WIDTH = {
    "quaternion": 4,
    "axis_angle": 3,
    "rotation_6d": 6,
    "matrix": 9,
    **{f"euler_angles_{o}": 3 for o in EULER_ORDERS},
}
_AXIS = {"r": 0, "p": 1, "y": 2}


def _axis_rot(angle: np.ndarray, axis: int) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    if axis == 0:
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == 1:
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, -1) for r in m], -2)


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """Numerically stable (Shepperd): pick the largest of w, x, y, z to divide by. w >= 0."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    k = np.argmax(cand, -1)
    r = np.sqrt(np.maximum(np.take_along_axis(cand, k[..., None], -1)[..., 0], 1e-12)) * 2  # 4*|q_k|
    q = np.empty(m.shape[:-2] + (4,))
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    opts = [
        np.stack([r / 4, d21 / r, d02 / r, d10 / r], -1),
        np.stack([d21 / r, r / 4, s10 / r, s02 / r], -1),
        np.stack([d02 / r, s10 / r, r / 4, s21 / r], -1),
        np.stack([d10 / r, s02 / r, s21 / r, r / 4], -1),
    ]
    for i in range(4):
        q = np.where((k == i)[..., None], opts[i], q)
    q = np.where(q[..., :1] < 0, -q, q)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def axis_angle_to_matrix(v: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = angle / 2
    # sin(x/2)/x with its limit 1/2 at 0
    k = np.where(angle < 1e-8, 0.5 - angle**2 / 48, np.sin(half) / np.where(angle < 1e-8, 1, angle))
    q = np.concatenate([np.cos(half), v * k], -1)
    return quaternion_to_matrix(q)


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    q = matrix_to_quaternion(m)
    n = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2 * np.arctan2(n, q[..., :1])
    k = np.where(n < 1e-8, 2.0, angle / np.where(n < 1e-8, 1, n))
    return q[..., 1:] * k


def euler_to_matrix(e: np.ndarray, order: str) -> np.ndarray:
    m = np.broadcast_to(np.eye(3), e.shape[:-1] + (3, 3))
    for i, letter in enumerate(order):
        m = _axis_rot(e[..., i], _AXIS[letter]) @ m  # extrinsic: later rotations left-multiply
    return m


def matrix_to_euler(m: np.ndarray, order: str) -> np.ndarray:
    """Inverse of euler_to_matrix. R = A3(c) A2(b) A1(a) for axes (i, j, k) of `order`."""
    i, j, k = (_AXIS[c] for c in order)
    # sign of the permutation (i, j, k): +1 for cyclic (x->y->z), -1 otherwise
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    b = np.arcsin(np.clip(-sign * m[..., k, i], -1.0, 1.0))
    a = np.arctan2(sign * m[..., k, j], m[..., k, k])
    c = np.arctan2(sign * m[..., j, i], m[..., i, i])
    return np.stack([a, b, c], -1)


def matrix_to_rotation_6d(m: np.ndarray) -> np.ndarray:
    return m[..., :2, :].reshape(m.shape[:-2] + (6,))


def rotation_6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    b2 = a2 - np.sum(b1 * a2, -1, keepdims=True) * b1
    b2 = b2 / np.linalg.norm(b2, axis=-1, keepdims=True)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], -2)


def to_matrix(x: np.ndarray, kind: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if kind == "matrix":
        return x.reshape(x.shape[:-1] + (3, 3))
    if kind == "quaternion":
        return quaternion_to_matrix(x)
    if kind == "axis_angle":
        return axis_angle_to_matrix(x)
    if kind == "rotation_6d":
        return rotation_6d_to_matrix(x)
    if kind.startswith("euler_angles_") and kind[13:] in EULER_ORDERS:
        return euler_to_matrix(x, kind[13:])
    raise ValueError(f"unknown rotation type {kind!r}; use one of {', '.join(TYPES)}")


def from_matrix(m: np.ndarray, kind: str) -> np.ndarray:
    if kind == "matrix":
        return m.reshape(m.shape[:-2] + (9,))
    if kind == "quaternion":
        return matrix_to_quaternion(m)
    if kind == "axis_angle":
        return matrix_to_axis_angle(m)
    if kind == "rotation_6d":
        return matrix_to_rotation_6d(m)
    if kind.startswith("euler_angles_") and kind[13:] in EULER_ORDERS:
        return matrix_to_euler(m, kind[13:])
    raise ValueError(f"unknown rotation type {kind!r}; use one of {', '.join(TYPES)}")


def convert(x: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert rotations (..., WIDTH[src]) to (..., WIDTH[dst])."""
    if src == dst:
        return np.asarray(x, dtype=np.float64)
    return from_matrix(to_matrix(x, src), dst)
