"""Rotation conversions: every representation round-trips through every other."""

from __future__ import annotations

import numpy as np
import pytest

from gr00t_exp.data.transforms import rotation as rot


def _random_matrices(n=64, seed=0):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return rot.quaternion_to_matrix(q / np.linalg.norm(q, axis=-1, keepdims=True))


def test_matrices_are_rotations():
    m = _random_matrices()
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)


@pytest.mark.parametrize("src", rot.TYPES)
@pytest.mark.parametrize(
    "dst", ["quaternion", "axis_angle", "rotation_6d", "matrix", "euler_angles_rpy", "euler_angles_ypr"]
)
def test_round_trip(src, dst):
    m = _random_matrices(seed=hash((src, dst)) % 1000)
    x = rot.from_matrix(m, src)
    assert x.shape == (len(m), rot.WIDTH[src])
    y = rot.convert(x, src, dst)
    assert y.shape == (len(m), rot.WIDTH[dst])
    np.testing.assert_allclose(rot.to_matrix(rot.convert(y, dst, src), src), m, atol=1e-9)


def test_known_values():
    # 90 degrees about z
    m = rot.axis_angle_to_matrix(np.array([0, 0, np.pi / 2]))
    np.testing.assert_allclose(m, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(
        rot.matrix_to_quaternion(m), [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)], atol=1e-12
    )
    # rpy = extrinsic x, y, z: R = Rz(yaw) Ry(pitch) Rx(roll)
    r, p, y = 0.1, -0.4, 0.7
    expect = rot._axis_rot(np.array(y), 2) @ rot._axis_rot(np.array(p), 1) @ rot._axis_rot(np.array(r), 0)
    np.testing.assert_allclose(rot.euler_to_matrix(np.array([r, p, y]), "rpy"), expect, atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_euler(expect, "rpy"), [r, p, y], atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_axis_angle(np.eye(3)), [0, 0, 0], atol=1e-12)


def test_unknown_type():
    with pytest.raises(ValueError, match="unknown rotation type 'euler'"):
        rot.to_matrix(np.zeros(3), "euler")
