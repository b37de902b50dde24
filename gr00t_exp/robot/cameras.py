"""Camera client: ZMQ SUB to JPEG image servers (legacy stitched or one port per camera).

Each stream sends one JPEG per message (optionally after a 12-byte 'dI' header). A received image
is decoded and converted BGR -> RGB in `decode_jpeg_rgb` (the only place in the project where the
channel order changes: OpenCV decodes to BGR, the datasets and the policy are RGB), then cut into
named column ranges (`cam_left_high`, ...). Sockets keep only the newest message (CONFLATE), so a
slow consumer never sees a growing queue; each frame carries its receive time for staleness checks.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import zmq

log = logging.getLogger(__name__)

HEADER_BYTES = 12  # struct 'dI': float64 send time + uint32 frame id (legacy Unit_Test mode)


def decode_jpeg_rgb(buf: bytes) -> np.ndarray:
    """JPEG bytes -> uint8 (H, W, 3) **RGB**. The single BGR -> RGB conversion of the project."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(buf, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"not a decodable JPEG ({len(buf)} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def split_columns(img: np.ndarray, splits) -> dict[str, np.ndarray]:
    """Cut a side-by-side image into named column ranges (x1 = None: to the right edge)."""
    out = {}
    w = img.shape[1]
    for s in splits:
        x1 = w if s.x1 is None else s.x1
        if not (0 <= s.x0 < x1 <= w):
            raise ValueError(
                f"deploy.robot.cameras split {s.name}: columns [{s.x0}, {x1}) do not fit a {w}-pixel-wide image; "
                "fix the split (legacy server: head 1280 = two 640 halves, then two 640 wrists)"
            )
        out[s.name] = np.ascontiguousarray(img[:, s.x0 : x1])
    return out


@dataclass
class Frame:
    image: np.ndarray  # RGB
    t_rx: float  # time.monotonic() at receipt
    seq: int


class CameraClient:
    """Background receiver for all configured streams; `latest()` gives the newest frame per camera."""

    def __init__(self, cfg, resize: Optional[tuple[int, int]] = None):
        self.cfg = cfg
        self.resize = tuple(resize) if resize else None
        self._ctx = zmq.Context.instance()
        self._socks: list[tuple[zmq.Socket, object]] = []
        for st in cfg.streams:
            sock = self._ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.CONFLATE, 1)  # newest only (before connect)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(f"tcp://{st.host or cfg.host}:{st.port}")
            self._socks.append((sock, st))
        self._frames: dict[str, Frame] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.errors = 0

    @property
    def names(self) -> list[str]:
        out = []
        for st in self.cfg.streams:
            out += [s.name for s in st.splits] if st.splits else [st.name or f"cam_{st.port}"]
        return out

    def start(self) -> CameraClient:
        self._thread = threading.Thread(target=self._run, name="cameras", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        poller = zmq.Poller()
        for sock, _ in self._socks:
            poller.register(sock, zmq.POLLIN)
        seq = 0
        while not self._stop.is_set():
            events = dict(poller.poll(50))
            for sock, st in self._socks:
                if sock not in events:
                    continue
                try:
                    msg = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    continue
                t = time.monotonic()
                try:
                    self._store(self._decode(msg, st), t, seq)
                    seq += 1
                except Exception as e:  # a corrupt frame must not kill the receiver
                    self.errors += 1
                    log.warning("camera port %s: bad frame (%s)", st.port, e)

    def _decode(self, msg: bytes, st) -> dict[str, np.ndarray]:
        if st.header:
            msg = msg[HEADER_BYTES:]
        img = decode_jpeg_rgb(msg)
        parts = split_columns(img, st.splits) if st.splits else {st.name or f"cam_{st.port}": img}
        if self.resize:
            import cv2

            h, w = self.resize
            parts = {k: cv2.resize(v, (w, h), interpolation=cv2.INTER_AREA) for k, v in parts.items()}
        return parts

    def _store(self, parts: dict[str, np.ndarray], t: float, seq: int) -> None:
        with self._lock:
            for k, v in parts.items():
                self._frames[k] = Frame(v, t, seq)

    def latest(self) -> dict[str, Frame]:
        with self._lock:
            return dict(self._frames)

    def wait_ready(self, names: list[str], timeout_s: float) -> dict[str, Frame]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            frames = self.latest()
            if all(n in frames for n in names):
                return frames
            time.sleep(0.01)
        missing = [n for n in names if n not in self.latest()]
        raise TimeoutError(
            f"no frames for cameras {missing} within {timeout_s:.1f} s from "
            f"{[f'{st.host or self.cfg.host}:{st.port}' for st in self.cfg.streams]}: is the image server "
            "running (mode=camera_server on PC2) and deploy.robot.cameras.host/streams right?"
        )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for sock, _ in self._socks:
            sock.close(0)
