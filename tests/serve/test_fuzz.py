"""Hypothesis fuzzing of the decoders and of a live server: every bad input gets a clear error
reply and the server keeps serving (nothing crashes, nothing hangs)."""

from __future__ import annotations

import io

import msgpack
import numpy as np
import pytest
import zmq
from gr00t_exp_client import json_codec, wire
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gr00t_exp.serve.base import ConstantPolicy
from gr00t_exp.serve.observation import ObservationError, parse_observation
from gr00t_exp.serve.zmq_server import ZmqPolicyServer

from .conftest import LANG, flat_obs, small_spec

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SPEC = small_spec()


@pytest.fixture(scope="module")
def live():
    with ZmqPolicyServer(ConstantPolicy(SPEC), port=0) as srv:
        ctx = zmq.Context()
        state = {"sock": None}

        def new_sock():
            if state["sock"] is not None:
                state["sock"].close(0)
            s = ctx.socket(zmq.REQ)
            s.setsockopt(zmq.RCVTIMEO, 5000)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(f"tcp://127.0.0.1:{srv.port}")
            state["sock"] = s

        new_sock()

        def call(payload: bytes):
            s = state["sock"]
            s.send(payload)
            try:
                return msgpack.unpackb(s.recv(), raw=False, strict_map_key=False)
            except zmq.Again:
                new_sock()
                pytest.fail(f"server did not answer {payload[:40]!r}")

        yield srv, call
        state["sock"].close(0)
        ctx.term()


def assert_alive(srv, call):
    assert call(msgpack.packb({"endpoint": "ping"})) == {"status": "ok", "message": "Server is running"}
    assert srv.running


def npy_entry(raw: bytes) -> dict:
    return {"__ndarray_class__": True, "as_npy": raw}


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(live, data):
    srv, call = live
    reply = call(data)
    assert isinstance(reply, (dict, list))
    if isinstance(reply, dict) and "error" in reply:
        assert reply["code"] in {"bad_request", "not_found", "forbidden"}
    assert_alive(srv, call)


@FUZZ
@given(st.integers(min_value=0, max_value=10_000))
def test_truncated_requests(live, cut):
    srv, call = live
    full = wire.encode({"endpoint": "get_action", "data": flat_obs(SPEC)})
    reply = call(full[: cut % len(full)])
    assert "error" in reply
    assert_alive(srv, call)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=16),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)  # fmt: skip


@FUZZ
@given(msgpack_values, st.sampled_from(["get_action", "reset", "get_modality_config", "metadata", "zzz"]))
def test_wrong_types(live, data, endpoint):
    srv, call = live
    reply = call(msgpack.packb({"endpoint": endpoint, "data": data}))
    if endpoint in ("get_action", "zzz"):
        assert "error" in reply and isinstance(reply["error"], str) and reply["error"]
    assert_alive(srv, call)


@FUZZ
@given(msgpack_values, msgpack_values)
def test_wrong_envelope_fields(live, endpoint, token):
    srv, call = live
    reply = call(msgpack.packb({"endpoint": endpoint, "api_token": token, "data": None}))
    if not (
        isinstance(endpoint, str) and endpoint in ("ping", "metadata", "handshake", "get_modality_config")
    ):
        assert isinstance(reply, dict) and "error" in reply
    assert_alive(srv, call)


@FUZZ
@given(
    st.lists(st.integers(0, 2**40), min_size=0, max_size=6),
    st.sampled_from(["<f8", "|u1", "<i4", "|O", "|V8", "<c16", "<M8[s]", "|b1"]),
    st.binary(max_size=64),
)
def test_forged_npy_headers(live, shape, descr, payload):
    srv, call = live
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": False, "shape": tuple(shape)}
    )
    obs = flat_obs(SPEC)
    msg = wire.encode({"endpoint": "get_action", "data": obs})
    obs_raw = msgpack.unpackb(msg, raw=False)
    obs_raw["data"]["state.left_arm"] = npy_entry(header.getvalue() + payload)
    reply = call(msgpack.packb(obs_raw))
    assert "error" in reply
    assert_alive(srv, call)


def test_pickled_object_array_is_never_loaded(live):
    srv, call = live

    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("unpickled!",))

    buf = io.BytesIO()
    np.save(buf, np.array([Boom()], dtype=object), allow_pickle=True)
    reply = call(
        msgpack.packb({"endpoint": "get_action", "data": {"state.left_arm": npy_entry(buf.getvalue())}})
    )
    assert "not allowed" in reply["error"]
    assert_alive(srv, call)


BAD_VALUES = st.sampled_from(
    [
        ("state.left_arm", np.full((1, 7), np.nan)),
        ("state.left_arm", np.array([[np.inf] * 7])),
        ("state.left_arm", np.zeros((1, 7), np.int32)),
        ("state.left_arm", np.zeros((1, 1, 1, 7))),
        ("state.right_arm", None),
        ("video.ego_view", None),
        ("video.ego_view", np.zeros((1, 480, 640, 3), np.uint8)),
        ("video.ego_view", np.zeros((1, 48, 64, 4), np.uint8)),
        ("video.ego_view", np.zeros((1, 48, 64, 3), np.float64)),
        ("video.wrist_view", "image"),
        (LANG, None),
        (LANG, [1, 2]),
        ("state.unknown", np.zeros((1, 2))),
    ]
)


@FUZZ
@given(st.lists(BAD_VALUES, min_size=1, max_size=3, unique_by=lambda kv: kv[0]))
def test_bad_observations(live, edits):
    srv, call = live
    obs = flat_obs(SPEC)
    for k, v in edits:
        if v is None:
            obs.pop(k, None)
        else:
            obs[k] = v
    with pytest.raises(ObservationError):
        parse_observation(obs, SPEC)
    reply = call(wire.encode({"endpoint": "get_action", "data": obs}))
    assert reply["code"] == "bad_request" and len(reply["error"]) > 10
    assert_alive(srv, call)


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_json_decoder_only_raises_wire_error(text):
    try:
        json_codec.loads(text)
    except wire.WireError:
        pass


@FUZZ
@given(
    st.sampled_from(["|O", "<f8", "|u1", "V8"]),
    st.lists(st.integers(-1, 2**40), max_size=4),
    st.text(max_size=20),
)
def test_json_numpy_entries(dtype, shape, b64):
    import json

    text = json.dumps({"a": {"__numpy__": b64, "dtype": dtype, "shape": shape}})
    try:
        out = json_codec.loads(text)["a"]
    except wire.WireError:
        return
    assert out.dtype.kind in "biufU" and list(out.shape) == shape
