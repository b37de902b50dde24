"""Wire codec of the ZeroMQ protocol: msgpack with numpy arrays as `.npy` bytes.

Byte-compatible with upstream GR00T's `MsgSerializer` (docs/upstream.md "Wire formats"):
an ndarray travels as ``{"__ndarray_class__": True, "as_npy": <np.save bytes>}`` and a
modality config as ``{"__ModalityConfig_class__": True, "as_json": <json>}``.

Decoding never unpickles: the `.npy` header is parsed and checked *before* any memory is
allocated (dtype must be a plain numeric / bool / unicode type, the declared shape must match the
bytes actually present), then the array is a zero-copy, read-only view of the bytes holding it:
msgpack's own bin copy, or, with the `views` a server's `bounded.scan` found, the received
buffer itself. `encode` writes packb's exact bytes with one copy of each array.

A modality config's `as_json` is JSON *text* in N1.5 (pydantic `model_validate_json`) and a *map*
in N1.6 (`ModalityConfig(**map)`); both are read, and `ModalityConfigWire(as_map=...)` says which
one is written.

Servers facing untrusted peers first run `scan(data, DecodeLimits(...))`: a walk over the msgpack
headers only (nothing is allocated per declared length) that bounds nesting, the number of
container entries, string and binary lengths, refuses extension types, and returns the request's
`endpoint` / `api_token` / `timeout_ms` so the token is checked before the real decode.

This module imports only numpy and msgpack: the robot-side client depends on it.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
import numpy as np
from numpy.lib import format as npy_format

NDARRAY_TAG = "__ndarray_class__"
MODALITY_CONFIG_TAG = "__ModalityConfig_class__"

# dtype kinds a peer may send: bool, signed/unsigned int, float, unicode strings.
# Object ("O"), void/structured ("V"), complex, datetime are refused (no pickle, no surprises).
ALLOWED_KINDS = frozenset("biufU")
MAX_NDIM = 8


class WireError(ValueError):
    """A message that cannot be decoded; the text says what is wrong."""


class ModalityConfigWire(Mapping):
    """A modality config as sent by `get_modality_config` (``delta_indices``, ``modality_keys``).

    Encoded in upstream's ModalityConfig form so upstream clients rebuild their own class:
    `as_map=False` writes `as_json` as JSON text (N1.5), `as_map=True` as a map (N1.6). Read it
    by attribute (`mc.modality_keys`) or as a read-only mapping (`mc["modality_keys"]`, `mc.get`).
    (Not a dict subclass: msgpack would pack that as a plain map without asking `_default`.)
    """

    def __init__(
        self, delta_indices: list[int], modality_keys: list[str], *, as_map: bool = False, **extra: Any
    ):
        self.delta_indices = list(delta_indices)
        self.modality_keys = list(modality_keys)
        self.as_map = as_map
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        return {"delta_indices": self.delta_indices, "modality_keys": self.modality_keys, **self.extra}

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def __iter__(self):
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and self.as_dict() == dict(other)

    __hash__ = None  # mutable, like a dict

    def __repr__(self) -> str:
        return f"ModalityConfig({self.as_dict()})"


_NPY_HEADERS: dict[tuple, bytes] = {}


def _npy_parts(arr: np.ndarray) -> tuple[bytes, Any]:
    """(header, data) of the bytes `np.save(..., allow_pickle=False)` writes for `arr`: the header
    is cached per (dtype, shape, order) and `data` is a uint8 view of the array's memory where it
    can be (a copy only for non-contiguous arrays), so the caller copies each byte once."""
    if arr.dtype.hasobject:
        raise WireError(f"cannot send an array of dtype {arr.dtype}: object arrays are not allowed")
    if not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        arr = np.ascontiguousarray(arr)
    fortran = bool(arr.flags.f_contiguous and not arr.flags.c_contiguous)
    key = (arr.dtype.str, arr.dtype.descr if arr.dtype.fields else None, arr.shape, fortran)
    header = _NPY_HEADERS.get(key)
    if header is None:
        buf = io.BytesIO()
        try:
            npy_format.write_array_header_1_0(buf, npy_format.header_data_from_array_1_0(arr))
        except ValueError:  # header too long for format 1.0: let numpy choose
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            return buf.getvalue(), b""
        header = buf.getvalue()
        if len(_NPY_HEADERS) >= 512:
            _NPY_HEADERS.clear()
        _NPY_HEADERS[key] = header
    body = arr.T if fortran else arr
    return header, (body.reshape(-1).view(np.uint8) if body.size else b"")


def array_to_npy(arr: np.ndarray) -> bytes:
    """The bytes `np.save(..., allow_pickle=False)` writes for `arr` (header + data).

    Built directly (cached header + one copy of the data): ~4x faster than np.save for images.
    """
    return b"".join(_npy_parts(arr))


_MAGIC = b"\x93NUMPY"
_HEADER_CACHE: dict[bytes, tuple[tuple[int, ...], bool, np.dtype]] = {}
_HEADER_CACHE_MAX = 512


def _parse_header(data: bytes | memoryview) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset). Robots send the same few headers every time, so
    parsed headers are cached by their bytes (numpy's parser uses ast.literal_eval: ~30 us each)."""
    if len(data) < 10 or bytes(data[:6]) != _MAGIC:
        raise WireError("'as_npy' is not .npy data (bad magic)")
    major = data[6]
    if major == 1:
        hlen, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3):
        if len(data) < 12:
            raise WireError("truncated .npy header")
        hlen, start = int.from_bytes(data[8:12], "little"), 12
    else:
        raise WireError(f".npy format version {major}.{data[7]} is not supported")
    if hlen > 10000 or start + hlen > len(data):
        raise WireError("truncated or oversized .npy header")
    key = bytes(data[: start + hlen])
    hit = _HEADER_CACHE.get(key)
    if hit is None:
        fp = io.BytesIO(key)
        try:
            npy_format.read_magic(fp)
            reader = npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
            shape, fortran, dtype = reader(fp, max_header_size=10000)
        except Exception as e:  # numpy raises ValueError / SyntaxError / others on bad headers
            raise WireError(f"invalid .npy header: {e}") from None
        if dtype.hasobject or dtype.kind not in ALLOWED_KINDS or dtype.fields is not None:
            raise WireError(
                f"array dtype {dtype} is not allowed (only bool, int, uint, float and unicode arrays)"
            )
        if len(shape) > MAX_NDIM or any((not isinstance(s, int)) or s < 0 for s in shape):
            raise WireError(f"invalid array shape {shape}")
        if dtype.itemsize == 0:  # 'U0': any declared element count would fit in zero bytes
            raise WireError(f"array dtype {dtype} has zero-sized elements")
        hit = (tuple(shape), bool(fortran), dtype)
        if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[key] = hit
    return (*hit, start + hlen)


def npy_to_array(data: bytes, max_bytes: int | None = None) -> np.ndarray:
    """Parse `.npy` bytes safely: header checked before allocation, never unpickles."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"'as_npy' must be bytes, got {type(data).__name__}")
    shape, fortran, dtype, offset = _parse_header(data)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    available = len(data) - offset
    if max_bytes is not None and nbytes > max_bytes:
        raise WireError(f"array of shape {shape} ({nbytes} bytes) exceeds the limit of {max_bytes} bytes")
    if nbytes != available:
        raise WireError(
            f"array declares shape {shape} dtype {dtype} ({nbytes} bytes) but carries {available} bytes"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    if fortran:
        return arr.reshape(shape[::-1]).T
    return arr.reshape(shape)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {NDARRAY_TAG: True, "as_npy": array_to_npy(obj)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, ModalityConfigWire):
        body = obj.as_dict()
        return {MODALITY_CONFIG_TAG: True, "as_json": body if obj.as_map else json.dumps(body)}
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} on the wire")


def _object_hook(obj: dict) -> Any:
    if NDARRAY_TAG in obj:
        if "as_npy" not in obj:
            raise WireError("ndarray entry without 'as_npy'")
        return npy_to_array(obj["as_npy"])
    if MODALITY_CONFIG_TAG in obj:
        body = obj.get("as_json", "")
        try:
            as_map = isinstance(body, dict)
            fields = dict(body) if as_map else json.loads(body)
            return ModalityConfigWire(**fields, as_map=as_map)
        except (TypeError, ValueError, AttributeError) as e:
            raise WireError(f"invalid ModalityConfig json: {e}") from None
    return obj


# What msgpack writes for `_default`'s ndarray map up to the `as_npy` bin header (fixmap of 2,
# NDARRAY_TAG: true, "as_npy"), so the single-copy encoder below can write it itself.
_NDARRAY_PREFIX = b"\x82" + msgpack.packb(NDARRAY_TAG) + msgpack.packb(True) + msgpack.packb("as_npy")
# Containers nested deeper than this are left to msgpack (whose own nesting limit then applies).
_MAX_WALK_DEPTH = 32
# Exact types msgpack packs without `default` or nesting: a map of only these is packed whole.
_SCALARS = frozenset((str, int, float, bool, type(None), bytes))


class _LeaveToMsgpack(Exception):
    """Raised by the single-copy walk for what only msgpack.packb encodes exactly."""


def _bin_header(n: int) -> bytes:
    """msgpack's bin 8 / 16 / 32 header for n payload bytes (n < 2**32)."""
    if n <= 0xFF:
        return b"\xc4" + n.to_bytes(1, "big")
    if n <= 0xFFFF:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def _walk(obj: Any, out: list, packer: msgpack.Packer, depth: int) -> None:
    """Append to `out` the pieces of `msgpack.packb(obj, default=_default, use_bin_type=True)`.

    Exact dicts, lists and tuples are walked (headers from the packer, the same ones msgpack
    writes), every ndarray becomes its map prefix + bin header + `.npy` header and a view of its
    data, everything else is packed by the packer itself. Container subclasses and very deep
    nesting raise _LeaveToMsgpack, so the result never differs from packb's.
    """
    t = type(obj)
    if t is dict:
        if depth >= _MAX_WALK_DEPTH:
            raise _LeaveToMsgpack
        if all(type(v) in _SCALARS for v in obj.values()) and all(type(k) is str for k in obj):
            out.append(packer.pack(obj))  # a flat map (timings, status): one packer call
            return
        out.append(packer.pack_map_header(len(obj)))
        for k, v in obj.items():
            if type(k) is not str and isinstance(k, (dict, list, tuple)):
                raise _LeaveToMsgpack
            out.append(packer.pack(k))
            _walk(v, out, packer, depth + 1)
    elif t is list or t is tuple:
        if depth >= _MAX_WALK_DEPTH:
            raise _LeaveToMsgpack
        out.append(packer.pack_array_header(len(obj)))
        for v in obj:
            _walk(v, out, packer, depth + 1)
    elif isinstance(obj, np.ndarray):
        header, data = _npy_parts(obj)
        n = len(header) + len(data)  # data: bytes or a 1-D uint8 view
        if n >= 2**32:
            raise _LeaveToMsgpack  # msgpack's bin limit: let it raise its own error
        out.append(b"".join((_NDARRAY_PREFIX, _bin_header(n), header)))
        if len(data):
            out.append(data)
    elif isinstance(obj, (dict, list, tuple)):  # subclasses (and ExtType, a namedtuple)
        raise _LeaveToMsgpack
    else:
        out.append(packer.pack(obj))


def encode(obj: Any) -> bytes:
    """msgpack bytes of `obj` (dicts, lists, str, numbers, bytes, ndarrays).

    The bytes are exactly `msgpack.packb(obj, default=_default, use_bin_type=True)`'s, built with
    one copy of each array: packb would copy an image into the `.npy` bytes, then into its
    growing buffer (reallocated as it grows), then into the result (a G1 request, 1.84 MB:
    0.51 ms with packb, 0.17 ms here, on the 2-core dev VM).
    """
    out: list = []
    try:
        _walk(obj, out, msgpack.Packer(default=_default, use_bin_type=True, buf_size=4096), 0)
    except _LeaveToMsgpack:
        return msgpack.packb(obj, default=_default, use_bin_type=True)
    return out[0] if len(out) == 1 else b"".join(out)


# Ext type code standing for a bin payload in the copy decode() rewrites (never on the wire).
_VIEW_EXT = 0
_FIXEXT4 = b"\xd6" + _VIEW_EXT.to_bytes(1, "big", signed=True)


def _object_hook_views(obj: dict) -> Any:
    """_object_hook for decode(views=...): a bin value that was not an `as_npy` comes back as the
    bytes msgpack would have made of it."""
    if NDARRAY_TAG not in obj:
        for k in [k for k, v in obj.items() if type(v) is memoryview]:
            obj[k] = obj[k].tobytes()
    return _object_hook(obj)


def _unpack_with_views(data: bytes | memoryview, views: Sequence[tuple[int, int, int]]) -> Any:
    """unpackb of `data` where each bin value in `views` is a read-only view of `data`, not a copy.

    msgpack copies every bin into a new bytes object (1.84 MB per G1 request). Here each such bin
    is replaced by a 6-byte ext object in a small copy of the message (the rest of the bytes are
    the same, so msgpack decodes everything else exactly as before), and the ext hook hands back
    the view: the arrays are then views of the received buffer itself.
    """
    mv = memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    mv = mv.toreadonly()  # a received zmq frame is writable; decoded arrays stay read-only
    parts: list = []
    payloads: list[memoryview] = []
    prev = 0
    for i, (header, payload, end) in enumerate(views):
        parts += (mv[prev:header], _FIXEXT4, i.to_bytes(4, "big"))
        payloads.append(mv[payload:end])
        prev = end
    parts.append(mv[prev:])

    def ext_hook(code: int, index: bytes) -> memoryview:
        if code != _VIEW_EXT or len(index) != 4:  # views come from scan, which refuses ext types
            raise WireError("msgpack extension types are not part of the protocol")
        return payloads[int.from_bytes(index, "big")]

    return msgpack.unpackb(
        b"".join(parts), object_hook=_object_hook_views, ext_hook=ext_hook, raw=False, strict_map_key=False
    )


def decode(data: bytes | memoryview, views: Sequence[tuple[int, int, int]] = ()) -> Any:
    """Decode one message; raises WireError (never anything else) on bad input.

    views: (header start, payload start, end) of bin values that are map values, as
    `bounded.scan` of this very `data` lists them in `RequestHead.views`: their arrays are decoded
    zero-copy (read-only views of `data`); the result is the same as without them.
    """
    try:
        if views:
            return _unpack_with_views(data, views)
        return msgpack.unpackb(data, object_hook=_object_hook, raw=False, strict_map_key=False)
    except WireError:
        raise
    except RecursionError:
        raise WireError("message nests too deeply") from None
    except Exception as e:  # msgpack's ExtraData, FormatError, StackError, ValueError, ...
        raise WireError(f"not a valid msgpack message ({type(e).__name__}: {e})") from None
