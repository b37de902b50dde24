"""Bounds checked on an untrusted message *before* it is decoded (ZeroMQ msgpack and HTTP JSON).

msgpack lets a 5-byte message declare a 4-billion-entry array, and both msgpack and JSON turn
each small entry into a Python object several times its encoded size (a 1 MB `[[],[],...]` is
~20 MB of lists). `scan` walks the msgpack headers only, in O(entries) with no allocation per
declared length, and stops at the first bound exceeded: nesting depth, total container entries,
string and binary lengths, extension types (never used by the protocol). It also returns the
top-level `endpoint`, `api_token` and `timeout_ms` of a request map, read without decoding the
(large) `data`, so a server checks the token before paying for the full decode, and where the
large binary map values (the images' `.npy` bytes) lie, so `wire.decode(data, head.views)` makes
their arrays views of the received buffer instead of copies.

`check_json` bounds a JSON body by counting its container openers (C-speed byte counts; brackets
inside strings only make it stricter).

numpy + msgpack only, like the rest of the robot-side client.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from gr00t_exp_client.wire import WireError

# Top-level request fields read by the cheap scan (everything else is skipped unread).
HEAD_FIELDS = ("endpoint", "api_token", "timeout_ms")
# Bin map values of at least this many bytes (images' `as_npy`) are listed in RequestHead.views,
# so wire.decode hands them out as views instead of copies; a smaller copy costs less than that.
VIEW_MIN_BYTES = 16 * 1024


@dataclass(frozen=True)
class DecodeLimits:
    """What one request may declare. A G1 observation is ~60 entries, depth 7 (N1.6 language
    [[str]]), strings < 100 bytes; the defaults leave room for batches of 64."""

    max_depth: int = 16
    max_entries: int = 10_000  # array items + map keys and values, summed over the message
    max_str_bytes: int = 64 * 1024
    max_json_containers: int = 1_000_000  # HTTP: '[' + '{' (plain-list images need many)


@dataclass
class RequestHead:
    """The cheap part of a request map. `present` lists which of HEAD_FIELDS it has."""

    is_map: bool
    endpoint: Any = None
    api_token: Any = None
    timeout_ms: Any = None
    present: set[str] = field(default_factory=set)
    entries: int = 0
    # (header start, payload start, end) of large bin map values below the top level, in order:
    # `wire.decode(data, head.views)` decodes their arrays zero-copy.
    views: list[tuple[int, int, int]] = field(default_factory=list)


# One entry per msgpack type byte: (kind, n, length-field format). kind is scalar | str | bin |
# array | map | never | ext; n is the fixed payload size (scalars), the inline count/length
# (fix* types), or None when a big-endian length field of that struct format follows.
def _type_table() -> list[tuple[str, int | None, str | None]]:
    t: list[tuple[str, int | None, str | None]] = [("ext", 0, None)] * 256
    for b in range(256):
        if b <= 0x7F or b >= 0xE0:
            t[b] = ("scalar", 0, None)
        elif b <= 0x8F:
            t[b] = ("map", b & 0x0F, None)
        elif b <= 0x9F:
            t[b] = ("array", b & 0x0F, None)
        elif b <= 0xBF:
            t[b] = ("str", b & 0x1F, None)
    fixed = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
             0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}  # fmt: skip
    for b, size in fixed.items():
        t[b] = ("scalar", size, None)
    sized = {0xD9: ("str", ">B"), 0xDA: ("str", ">H"), 0xDB: ("str", ">I"),
             0xC4: ("bin", ">B"), 0xC5: ("bin", ">H"), 0xC6: ("bin", ">I"),
             0xDC: ("array", ">H"), 0xDD: ("array", ">I"), 0xDE: ("map", ">H"), 0xDF: ("map", ">I")}  # fmt: skip
    for b, (kind, fmt) in sized.items():
        t[b] = (kind, None, fmt)
    t[0xC1] = ("never", 0, None)
    return t


_TYPES = _type_table()
_INT = {0xCC: (1, ">B"), 0xCD: (2, ">H"), 0xCE: (4, ">I"), 0xCF: (8, ">Q"),
        0xD0: (1, ">b"), 0xD1: (2, ">h"), 0xD2: (4, ">i"), 0xD3: (8, ">q")}  # fmt: skip


class _Scanner:
    def __init__(self, data: bytes | memoryview, limits: DecodeLimits):
        self.buf = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.n = len(self.buf)
        self.pos = 0
        self.entries = 0
        self.limits = limits
        self.views: list[tuple[int, int, int]] = []

    def _need(self, k: int) -> None:
        if self.pos + k > self.n:
            raise WireError("truncated msgpack message")

    def _add(self, count: int) -> None:
        self.entries += count
        if self.entries > self.limits.max_entries:
            raise WireError(
                f"message declares more than {self.limits.max_entries} array/map entries "
                "(DecodeLimits.max_entries)"
            )

    def header(self) -> tuple[str, int]:
        """(kind, n) of the next object, pos after its header; kind: scalar|str|bin|array|map."""
        if self.pos >= self.n:
            raise WireError("truncated msgpack message")
        kind, n, fmt = _TYPES[self.buf[self.pos]]
        self.pos += 1
        if fmt is not None:
            size = struct.calcsize(fmt)
            self._need(size)
            n = struct.unpack_from(fmt, self.buf, self.pos)[0]
            self.pos += size
        elif kind == "scalar":
            if n:
                self._need(n)
                self.pos += n
            return "scalar", 0
        elif kind == "never":
            raise WireError("msgpack byte 0xc1 is never used")
        elif kind == "ext":
            raise WireError("msgpack extension types are not part of the protocol")
        return kind, n

    def payload(self, kind: str, n: int) -> None:
        """Check and step over a str/bin payload of n bytes."""
        if kind == "str" and n > self.limits.max_str_bytes:
            raise WireError(
                f"a string of {n} bytes exceeds {self.limits.max_str_bytes} (DecodeLimits.max_str_bytes)"
            )
        self._need(n)
        self.pos += n

    def skip(self, depth: int) -> None:
        """Step over one object (iteratively: a hostile depth cannot exhaust the Python stack),
        noting large bin map values in self.views."""
        pending = [1]  # objects still to read at each open level
        in_map = [False]  # whether each open level is a map (its entries alternate key, value)
        while pending:
            if pending[-1] == 0:
                pending.pop()
                in_map.pop()
                continue
            pending[-1] -= 1
            start = self.pos
            kind, n = self.header()
            if kind in ("str", "bin"):
                self.payload(kind, n)
                # A map of k pairs reads 2k objects; a value leaves an even count still to read.
                if kind == "bin" and n >= VIEW_MIN_BYTES and in_map[-1] and pending[-1] % 2 == 0:
                    self.views.append((start, self.pos - n, self.pos))
            elif kind in ("array", "map"):
                count = n * (2 if kind == "map" else 1)
                if depth + len(pending) > self.limits.max_depth:
                    raise WireError(
                        f"message nests deeper than {self.limits.max_depth} (DecodeLimits.max_depth)"
                    )
                if count > self.n - self.pos:  # every entry takes at least one byte
                    raise WireError(f"{kind} declares {n} entries but the message is shorter")
                self._add(count)
                pending.append(count)
                in_map.append(kind == "map")

    def read_str(self) -> str | None:
        """The next object if it is a string (pos after it); None (pos unchanged) otherwise."""
        start = self.pos
        kind, n = self.header()
        if kind != "str":
            self.pos = start
            return None
        self.payload(kind, n)
        try:
            return bytes(self.buf[self.pos - n : self.pos]).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("a string is not valid UTF-8") from None

    def read_int(self) -> int | None:
        """The next object if it is an integer (None otherwise); pos after it either way."""
        self._need(1)
        b = self.buf[self.pos]
        if b <= 0x7F:
            self.pos += 1
            return b
        if b >= 0xE0:
            self.pos += 1
            return b - 256
        if b in _INT:
            size, fmt = _INT[b]
            self._need(1 + size)
            value = struct.unpack_from(fmt, self.buf, self.pos + 1)[0]
            self.pos += 1 + size
            return value
        self.skip(1)
        return None


def scan(data: bytes | memoryview, limits: DecodeLimits) -> RequestHead:
    """Check `data` against `limits` without decoding it; raise WireError naming the bound."""
    s = _Scanner(data, limits)
    start = s.pos
    kind, n = s.header()
    head = RequestHead(is_map=kind == "map")
    if kind != "map":
        s.pos = start
        s.skip(0)
    else:
        if 2 * n > s.n - s.pos:
            raise WireError(f"map declares {n} entries but the message is shorter")
        s._add(2 * n)
        for _ in range(n):
            key = s.read_str()
            if key is None:
                s.skip(1)
            if key in HEAD_FIELDS and key not in head.present:
                head.present.add(key)
                if key == "timeout_ms":
                    value: Any = s.read_int()
                else:
                    value = s.read_str()
                    if value is None:
                        value = _NOT_STR
                        s.skip(1)
                setattr(head, key, value)
            else:
                s.skip(1)
    if s.pos != s.n:
        raise WireError(f"{s.n - s.pos} bytes after the end of the msgpack message")
    head.entries = s.entries
    head.views = s.views
    return head


class _NotStr:
    """Marks a head field that is present but not a string (e.g. an array as endpoint name)."""

    def __repr__(self) -> str:
        return "<not a string>"


_NOT_STR = _NotStr()


def check_json(body: bytes, limits: DecodeLimits) -> None:
    """Refuse a JSON body that opens more containers than `limits.max_json_containers`."""
    containers = body.count(b"[") + body.count(b"{")
    if containers > limits.max_json_containers:
        raise WireError(
            f"JSON body opens {containers} arrays/objects, more than {limits.max_json_containers} "
            "(deploy.server.max_json_containers; send arrays json_numpy-encoded instead of nested lists)"
        )
