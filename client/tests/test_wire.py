"""The msgpack + .npy codec: round trips, upstream byte layout, and refusals."""

from __future__ import annotations

import collections
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


def _upstream_packb(obj):
    """A request as upstream's MsgSerializer builds it: msgpack.packb with np.save bytes."""

    def default(o):
        if isinstance(o, np.ndarray):
            buf = io.BytesIO()
            np.save(buf, o, allow_pickle=False)
            return {"__ndarray_class__": True, "as_npy": buf.getvalue()}
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(type(o).__name__)

    return msgpack.packb(obj, default=default, use_bin_type=True)


def _g1_request(rng):
    obs = {f"video.{v}": rng.integers(0, 256, (1, 480, 640, 3), dtype=np.uint8) for v in ("ego", "wrist")}
    obs |= {f"state.{k}": rng.standard_normal((1, d)) for k, d in (("left_arm", 7), ("left_hand", 6))}
    obs["annotation.human.task_description"] = ["pick up the apple"]
    return {"endpoint": "get_action", "data": {"observation": obs, "options": None}, "timeout_ms": 5000}


@pytest.mark.parametrize(
    "obj",
    [
        "g1",
        {"a": np.zeros((300, 300), np.uint8), "b": np.zeros(3).T, "c": np.arange(24.0).reshape(4, 6)[:, ::2]},
        {"x": [np.zeros((2, 3), ">i4"), (np.array(["ab", "c"]), np.float32(1.5))], "y": np.zeros((2, 0, 3))},
        {"sizes": [np.zeros(n, np.uint8) for n in (0, 1, 100, 200, 70_000)], 3: b"raw", (1, 2): None},
        {"nested": {"video": {"v": np.ones((1, 1, 8, 8, 3), np.uint8)}, "state": {"s": np.ones((1, 1, 7))}}},
        collections.OrderedDict(a=np.zeros(4)),  # a dict subclass: left to msgpack
        [[[[np.zeros(2)]]]] * 3,
        np.arange(5),
        7,
    ],
)
def test_encode_is_byte_identical_to_upstreams_msgpack(obj):
    obj = _g1_request(np.random.default_rng(0)) if isinstance(obj, str) else obj
    assert wire.encode(obj) == _upstream_packb(obj)


def test_encode_leaves_deep_nesting_to_msgpack():
    deep = [np.zeros(2)]
    for _ in range(100):
        deep = {"k": deep}
    assert wire.encode(deep) == _upstream_packb(deep)


def test_decode_with_scan_views_is_zero_copy_and_otherwise_identical():
    from gr00t_exp_client.bounded import DecodeLimits, scan

    req = _g1_request(np.random.default_rng(1))
    req["data"]["options"] = {"blob": b"\x01" * 40_000, "small": b"\x02"}  # large bins that are not arrays
    body = bytearray(wire.encode(req))  # writable, like a received zmq frame
    head = scan(memoryview(body), DecodeLimits())
    assert len(head.views) == 3  # the two images' .npy bytes and the blob
    plain = wire.decode(bytes(body))
    viewed = wire.decode(memoryview(body), head.views)
    obs, ref = viewed["data"]["observation"], plain["data"]["observation"]
    assert list(obs) == list(ref)
    for k, v in ref.items():
        if isinstance(v, np.ndarray):
            assert obs[k].dtype == v.dtype and obs[k].shape == v.shape and not obs[k].flags.writeable
            np.testing.assert_array_equal(obs[k], v)
        else:
            assert obs[k] == v
    raw = np.frombuffer(body, np.uint8)
    assert np.shares_memory(obs["video.ego"], raw)  # a view of the received buffer, not a copy
    assert not np.shares_memory(obs["state.left_arm"], raw)  # small arrays: copied as before
    assert viewed["data"]["options"] == plain["data"]["options"]
    assert type(viewed["data"]["options"]["blob"]) is bytes
