"""JSON encoding of numpy arrays as upstream's HTTP server uses it (json_numpy style).

An array is ``{"__numpy__": <base64 of the C-ordered bytes>, "dtype": "<f4", "shape": [..]}``.
Plain nested lists are accepted too (observation.py turns them into arrays per modality).
Decoding refuses object/structured dtypes and checks the byte count against the declared shape
before building the array.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import numpy as np

from gr00t_exp_client.wire import ALLOWED_KINDS, MAX_NDIM, WireError

NUMPY_TAG = "__numpy__"


def _hook(obj: dict) -> Any:
    if NUMPY_TAG not in obj:
        return obj
    data, dtype_s, shape = obj.get(NUMPY_TAG), obj.get("dtype"), obj.get("shape")
    if not isinstance(data, str) or not isinstance(dtype_s, str) or not isinstance(shape, list):
        raise WireError("a __numpy__ entry needs '__numpy__' (base64 str), 'dtype' (str) and 'shape' (list)")
    try:
        dtype = np.dtype(dtype_s)
    except (TypeError, ValueError):
        raise WireError(f"unknown dtype {dtype_s!r}") from None
    if dtype.hasobject or dtype.kind not in ALLOWED_KINDS or dtype.fields is not None:
        raise WireError(
            f"array dtype {dtype} is not allowed (only bool, int, uint, float and unicode arrays)"
        )
    if len(shape) > MAX_NDIM or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise WireError(f"invalid array shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    # base64 length bounds the decoded size: refuse a mismatch before decoding.
    if nbytes > len(data) * 3 // 4 + 3:
        raise WireError(f"array declares shape {shape} dtype {dtype} ({nbytes} bytes) but carries less data")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise WireError("invalid base64 in a __numpy__ entry") from None
    if len(raw) != nbytes:
        raise WireError(
            f"array declares shape {shape} dtype {dtype} ({nbytes} bytes) but carries {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def loads(text: str | bytes) -> Any:
    """Parse JSON with numpy arrays; raises WireError on any bad input."""
    try:
        return json.loads(text, object_hook=_hook)
    except WireError:
        raise
    except RecursionError:
        raise WireError("JSON nests too deeply") from None
    except (ValueError, TypeError) as e:  # JSONDecodeError, UnicodeDecodeError
        raise WireError(f"invalid JSON: {e}") from None


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("object arrays cannot be encoded")
        arr = np.ascontiguousarray(obj)
        return {
            NUMPY_TAG: base64.b64encode(arr.tobytes()).decode("ascii"),
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
        }
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def _to_lists(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {k: _to_lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_lists(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def dumps(obj: Any, lists: bool = False) -> str:
    """JSON text; arrays json_numpy-encoded, or plain nested lists when `lists`."""
    if lists:
        return json.dumps(_to_lists(obj), allow_nan=False)
    return json.dumps(obj, default=_default, allow_nan=False)
