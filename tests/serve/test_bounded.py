"""Pre-decode bounds (gr00t_exp_client.bounded) and both ModalityConfig wire forms."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from gr00t_exp_client import wire
from gr00t_exp_client.bounded import VIEW_MIN_BYTES, DecodeLimits, check_json, scan

LIMITS = DecodeLimits(max_depth=8, max_entries=100, max_str_bytes=64)


def test_scan_reads_the_head_without_decoding_data():
    body = wire.encode(
        {"endpoint": "get_action", "api_token": "tok", "timeout_ms": 250, "data": {"x": np.zeros((4, 4))}}
    )
    head = scan(body, LIMITS)
    assert (
        head.is_map and head.endpoint == "get_action" and head.api_token == "tok" and head.timeout_ms == 250
    )
    assert scan(msgpack.packb({"endpoint": [1, 2]}), LIMITS).endpoint != "get_action"
    assert not scan(msgpack.packb([1, 2]), LIMITS).is_map


@pytest.mark.parametrize(
    "payload,match",
    [
        (b"\xdd\xff\xff\xff\xff", "declares 4294967295 entries"),
        (msgpack.packb({"data": [0] * 101}), "more than 100"),
        (b"\x91" * 9 + b"\xc0", "deeper than 8"),
        (msgpack.packb({"data": "a" * 65}), "65 bytes exceeds 64"),
        (msgpack.packb(msgpack.ExtType(1, b"x")), "extension types"),
        (msgpack.packb({"a": 1}) + b"\x00", "after the end"),
        (b"\xc1", "never used"),
        (b"\xda\x00\x10ab", "truncated"),
    ],
)
def test_scan_refuses_before_allocating(payload, match):
    with pytest.raises(wire.WireError, match=match):
        scan(payload, LIMITS)


def test_scan_agrees_with_msgpack_on_valid_messages():
    rng = np.random.default_rng(0)
    for _ in range(200):
        obj = {"endpoint": "x", "data": [int(v) for v in rng.integers(-(2**40), 2**40, rng.integers(0, 20))],
               "f": float(rng.random()), "b": bytes(rng.integers(0, 256, 5, dtype=np.uint8)), "n": None}  # fmt: skip
        body = msgpack.packb(obj)
        assert scan(body, DecodeLimits()).endpoint == "x"
        assert msgpack.unpackb(body) == obj


def test_check_json_counts_containers():
    check_json(b'{"a": [1, 2]}', DecodeLimits(max_json_containers=2))
    with pytest.raises(wire.WireError, match="max_json_containers"):
        check_json(b"[" + b"[]," * 10 + b"[]]", DecodeLimits(max_json_containers=5))


def test_modality_config_in_both_generations_forms():
    mc15 = wire.ModalityConfigWire([0], ["video.ego_view"])
    mc16 = wire.ModalityConfigWire([0], ["ego_view"], as_map=True, action_configs=None)
    raw = msgpack.unpackb(wire.encode({"a": mc15, "b": mc16}))
    assert json.loads(raw["a"]["as_json"]) == {"delta_indices": [0], "modality_keys": ["video.ego_view"]}
    assert raw["b"]["as_json"] == {
        "delta_indices": [0],
        "modality_keys": ["ego_view"],
        "action_configs": None,
    }
    back = wire.decode(wire.encode({"a": mc15, "b": mc16}))  # our client reads both
    assert back["a"].modality_keys == ["video.ego_view"] and back["b"].modality_keys == ["ego_view"]


def test_zero_sized_dtypes_are_refused():
    header = b"{'descr': '<U0', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    raw = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    with pytest.raises(wire.WireError, match="zero-sized"):
        wire.npy_to_array(raw)


def test_scan_lists_large_bin_map_values_for_zero_copy_decode():
    big = b"\x07" * VIEW_MIN_BYTES
    body = msgpack.packb(
        {"top": big, "data": {"v": big, "list": [big], "small": b"x", big: 1, "img": {"as_npy": big}}},
        use_bin_type=True,
    )
    head = scan(body, DecodeLimits(max_str_bytes=64))
    # Values of nested maps only: not top-level values, list items or keys.
    assert len(head.views) == 2
    for start, payload, end in head.views:
        assert body[start] == 0xC5 and body[payload:end] == big  # bin 16 header, then the payload
    assert wire.decode(body, head.views) == wire.decode(body)
