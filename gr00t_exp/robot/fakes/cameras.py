"""Fake Unitree image servers on ZMQ, one per framing, each camera a known solid colour.

- `legacy`: xr_teleoperate's image_server.py: one PUB port, one JPEG per message of
  head (binocular, 480x1280: left eye | right eye) | left wrist 480x640 | right wrist 480x640,
  i.e. 480x2560; with `header=True` the Unit_Test mode's 12-byte 'dI' (time, frame id) first.
- `teleimager`: one PUB port per camera, one JPEG per message: head 480x1280 (binocular) on
  `ports[0]`, left wrist 480x640 on `ports[1]`, right wrist on `ports[2]`.

Frames are built BGR and JPEG-encoded as OpenCV servers do; `CAMERA_RGB` says what colour each
dataset camera must decode to, so a test sees whether the client cut and named the views right.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Optional

import numpy as np
import zmq

from gr00t_exp.robot.camera_server import encode_jpeg

H, EYE_W, WRIST_W = 480, 640, 640
# Dataset camera -> the RGB colour the fake paints it (distinct in every channel).
CAMERA_RGB = {
    "cam_left_high": (220, 30, 30),
    "cam_right_high": (30, 200, 40),
    "cam_left_wrist": (40, 40, 210),
    "cam_right_wrist": (210, 200, 40),
}
FRAMINGS = ("legacy", "teleimager")


def _patch(name: str, width: int) -> np.ndarray:
    r, g, b = CAMERA_RGB[name]
    return np.full((H, width, 3), (b, g, r), np.uint8)  # BGR, as OpenCV captures


def head_frame() -> np.ndarray:
    return np.hstack([_patch("cam_left_high", EYE_W), _patch("cam_right_high", EYE_W)])


class FakeImageServer:
    def __init__(
        self,
        framing: str,
        ports: list[int],
        host: str = "127.0.0.1",
        fps: float = 10.0,
        header: bool = False,
    ):
        if framing not in FRAMINGS:
            raise ValueError(f"framing={framing!r}: use one of {FRAMINGS}")
        need = 1 if framing == "legacy" else 3
        if len(ports) != need:
            raise ValueError(f"the {framing} framing uses {need} port(s), got {ports}")
        self.framing, self.header, self.fps = framing, header, float(fps)
        self._ctx = zmq.Context.instance()
        self.socks = []
        for p in ports:
            s = self._ctx.socket(zmq.PUB)
            s.setsockopt(zmq.SNDHWM, 1)
            s.setsockopt(zmq.LINGER, 0)
            s.bind(f"tcp://{host}:{p}")
            self.socks.append(s)
        # The frames never change: encode once.
        if framing == "legacy":
            stitched = np.hstack(
                [head_frame(), _patch("cam_left_wrist", WRIST_W), _patch("cam_right_wrist", WRIST_W)]
            )
            self.messages = [encode_jpeg(stitched, 95)]
        else:
            views = [head_frame(), _patch("cam_left_wrist", WRIST_W), _patch("cam_right_wrist", WRIST_W)]
            self.messages = [encode_jpeg(v, 95) for v in views]
        self.sent = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        while not self._stop.is_set():
            for sock, msg in zip(self.socks, self.messages, strict=True):
                if self.header:
                    msg = struct.pack("dI", time.time(), self.sent) + msg
                try:
                    sock.send(msg, zmq.NOBLOCK)
                except zmq.Again:
                    pass
            self.sent += 1
            self._stop.wait(1.0 / self.fps)

    def start(self) -> FakeImageServer:
        self._thread = threading.Thread(target=self._run, name=f"fake_{self.framing}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)  # sockets are not thread-safe: stop sending first
        for s in self.socks:
            s.close(0)

    def __enter__(self) -> FakeImageServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
