"""The msgpack + .npy codec: round trips, upstream byte layout, and refusals."""

from __future__ import annotations

import io

import msgpack
import numpy as np
import pytest
from gr00t_exp_client import wire


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.arange(12, dtype=np.float64).reshape(3, 4).T,  # Fortran order
        np.zeros((2, 0, 3), dtype=np.uint8),
        np.array([True, False]),
        np.array(["pick", "place"]),
        np.int64(7),
    ],
)
def test_round_trip(arr):
    out = wire.decode(wire.encode({"x": arr}))["x"]
    if isinstance(arr, np.generic):
        assert out == arr.item()
    else:
        assert out.dtype == arr.dtype and out.shape == arr.shape
        np.testing.assert_array_equal(out, arr)


def test_encoding_is_upstreams_layout():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(wire.encode({"a": arr}), raw=False)
    assert raw["a"]["__ndarray_class__"] is True
    np.testing.assert_array_equal(np.load(io.BytesIO(raw["a"]["as_npy"]), allow_pickle=False), arr)


def test_object_arrays_are_refused_in_both_directions():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    msg = msgpack.packb({"x": {"__ndarray_class__": True, "as_npy": buf.getvalue()}})
    with pytest.raises(wire.WireError, match="not allowed"):
        wire.decode(msg)
    with pytest.raises((wire.WireError, TypeError)):
        wire.encode({"x": np.array([None], dtype=object)})


def test_declared_shape_must_match_payload_before_allocating():
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    msg = msgpack.packb({"x": {"__ndarray_class__": True, "as_npy": header.getvalue() + b"\0" * 8}})
    with pytest.raises(wire.WireError, match="carries 8 bytes"):
        wire.decode(msg)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xc1", b"\x92\x01", msgpack.packb({"x": {"__ndarray_class__": True}}),
     msgpack.packb({"x": {"__ndarray_class__": True, "as_npy": "text"}}),
     msgpack.packb({"x": {"__ndarray_class__": True, "as_npy": b"\x93NUMPY\x09\x00"}})],
)  # fmt: skip
def test_garbage_raises_wire_error_only(payload):
    with pytest.raises(wire.WireError):
        wire.decode(payload)


def test_modality_config_uses_upstream_tag():
    mc = wire.ModalityConfigWire(delta_indices=[0], modality_keys=["video.ego_view"])
    raw = msgpack.unpackb(wire.encode({"video": mc}), raw=False)
    assert raw["video"]["__ModalityConfig_class__"] is True
    assert wire.decode(wire.encode({"video": mc}))["video"] == mc
    assert mc.as_dict() == {"delta_indices": [0], "modality_keys": ["video.ego_view"]}
    # read like upstream's object and like a dict (robot code does both)
    assert mc.modality_keys == ["video.ego_view"] and mc.get("modality_keys") == ["video.ego_view"]
    assert dict(mc) == mc.as_dict()


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((1, 7)),
        np.arange(12.0).reshape(3, 4).T,
        np.arange(24, dtype=">i4").reshape(2, 3, 4)[:, ::2],
        np.array(["ab", "c"]),
        np.zeros((2, 0, 3), np.uint8),
        np.array(3.0),
    ],
)
def test_npy_bytes_are_identical_to_np_save(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    assert wire.array_to_npy(arr) == buf.getvalue()
