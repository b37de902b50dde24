"""The JSON codec of the HTTP protocol (json_numpy style): round trips and refusals."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from gr00t_exp_client import json_codec
from gr00t_exp_client.wire import WireError


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.arange(12, dtype=np.float64).reshape(3, 4).T,  # not C-contiguous
        np.zeros((2, 0, 3), dtype=np.uint8),
        np.array([True, False]),
        np.array(["pick", "place"]),
    ],
)
def test_round_trip(arr):
    out = json_codec.loads(json_codec.dumps({"x": arr, "n": np.int64(3)}))
    assert out["n"] == 3
    assert out["x"].dtype == arr.dtype and out["x"].shape == arr.shape
    np.testing.assert_array_equal(out["x"], arr)


def test_encoding_is_json_numpy_layout():
    arr = np.arange(6, dtype="<f4").reshape(2, 3)
    raw = json.loads(json_codec.dumps({"a": arr}))["a"]
    assert raw["dtype"] == "<f4" and raw["shape"] == [2, 3]
    assert base64.b64decode(raw["__numpy__"]) == arr.tobytes()


def test_lists_mode_writes_plain_nested_lists():
    assert json.loads(json_codec.dumps({"a": np.eye(2)}, lists=True)) == {"a": [[1.0, 0.0], [0.0, 1.0]]}


def test_nan_is_refused_on_encode():
    with pytest.raises(ValueError):
        json_codec.dumps({"x": float("nan")})


def _entry(**kw) -> str:
    base = {"__numpy__": base64.b64encode(b"\0" * 8).decode(), "dtype": "<f8", "shape": [1]}
    base.update(kw)
    return json.dumps({"x": base})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_entry(dtype="|O"), "not allowed"),
        (_entry(dtype="nonsense"), "unknown dtype"),
        (_entry(shape=[10**9]), "carries less data"),
        (_entry(shape=[2, -1]), "invalid array shape"),
        (_entry(__numpy__="***"), "base64|carries"),
        (_entry(shape="1"), "needs"),
        ("{not json", "invalid JSON"),
    ],
)
def test_bad_input_raises_wire_error(text, match):
    with pytest.raises(WireError, match=match):
        json_codec.loads(text)
