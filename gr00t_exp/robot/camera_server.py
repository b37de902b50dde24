"""`mode=camera_server`: this project's image server for PC2 (OpenCV capture -> JPEG -> ZMQ PUB).

Wire-compatible with the legacy xr_teleoperate image server (layout=stitched: all cameras side by
side in one JPEG per message on one port) and with one-PUB-per-camera clients (layout=per_port:
camera i on bind port + i). Frames stay BGR as OpenCV captures them; JPEG stores colour, and the
client's `decode_jpeg_rgb` returns RGB. Sockets drop frames rather than queue (SNDHWM 1).
`SyntheticSource` (device "synthetic") makes the server testable without cameras.

OpenCV (cv2) is imported inside the functions that capture or encode: it is an optional
dependency, and the synthetic source and the tests run without it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

import numpy as np
import zmq

from gr00t_exp.robot.config import CameraServerConfig, robot_config
from gr00t_exp.robot.safety import StopSignal

log = logging.getLogger(__name__)

# BGR colours of the synthetic cameras (in OpenCV's order): red, green, blue, yellow patches.
SYNTHETIC_BGR = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]


class SyntheticSource:
    """A BGR frame (OpenCV's order) with a solid colour patch on the left and a moving bar."""

    def __init__(self, width: int, height: int, index: int = 0):
        self.width, self.height, self.index = width, height, index
        self.n = 0

    def read(self) -> Optional[np.ndarray]:
        img = np.full((self.height, self.width, 3), 40, np.uint8)
        img[:, : self.width // 2] = SYNTHETIC_BGR[self.index % len(SYNTHETIC_BGR)]
        x = (self.n * 7) % self.width
        img[: self.height // 8, x : x + 4] = 255
        self.n += 1
        return img

    def release(self) -> None:
        pass


class OpenCVSource:
    def __init__(self, device: str, width: int, height: int, fourcc: Optional[str], fps: float):
        import cv2

        dev = int(device) if str(device).isdigit() else device
        self.cap = cv2.VideoCapture(dev, cv2.CAP_V4L2) if isinstance(dev, int) else cv2.VideoCapture(dev)
        if fourcc:
            self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.cap.set(cv2.CAP_PROP_FPS, fps)
        if not self.cap.isOpened():
            raise RuntimeError(
                f"cannot open camera {device!r} (deploy.robot.camera_server.sources): check `v4l2-ctl --list-devices`; "
                "/dev/videoN numbers change across boots"
            )
        self.width, self.height = width, height

    def read(self) -> Optional[np.ndarray]:
        ok, frame = self.cap.read()
        if not ok:
            return None
        if frame.shape[:2] != (self.height, self.width):
            import cv2

            frame = cv2.resize(frame, (self.width, self.height))
        return frame

    def release(self) -> None:
        self.cap.release()


def make_source(src, fps: float, index: int):
    if str(src.device) == "synthetic":
        return SyntheticSource(src.width, src.height, index)
    return OpenCVSource(src.device, src.width, src.height, src.fourcc, fps)


def encode_jpeg(bgr: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _bind_with_port(bind: str, offset: int) -> str:
    head, port = bind.rsplit(":", 1)
    return f"{head}:{int(port) + offset}"


class CameraServer:
    def __init__(self, cfg: CameraServerConfig, sources: Optional[list] = None):
        if cfg.layout not in ("stitched", "per_port"):
            raise ValueError(f"deploy.robot.camera_server.layout={cfg.layout!r}: use stitched or per_port")
        self.cfg = cfg
        self.sources = (
            sources
            if sources is not None
            else [make_source(s, cfg.fps, i) for i, s in enumerate(cfg.sources)]
        )
        if cfg.layout == "stitched":
            heights = {s.height for s in cfg.sources}
            if len(heights) > 1:
                raise ValueError(
                    f"deploy.robot.camera_server: stitched layout needs equal heights, got {sorted(heights)}"
                )
        self._ctx = zmq.Context.instance()
        n_socks = 1 if cfg.layout == "stitched" else len(self.sources)
        self.socks = []
        for i in range(n_socks):
            s = self._ctx.socket(zmq.PUB)
            s.setsockopt(zmq.SNDHWM, 1)
            s.setsockopt(zmq.LINGER, 0)
            s.bind(_bind_with_port(cfg.bind, i))
            self.socks.append(s)
        self.sent = 0
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> bool:
        frames = [src.read() for src in self.sources]
        if any(f is None for f in frames):
            return False
        if self.cfg.layout == "stitched":
            msgs = [encode_jpeg(np.hstack(frames), self.cfg.jpeg_quality)]
        else:
            msgs = [encode_jpeg(f, self.cfg.jpeg_quality) for f in frames]
        for sock, m in zip(self.socks, msgs, strict=True):
            try:
                sock.send(m, zmq.NOBLOCK)
            except zmq.Again:
                pass  # nobody keeping up: drop, never queue
        self.sent += 1
        return True

    def serve(self) -> int:
        period = 1.0 / self.cfg.fps
        nxt = time.monotonic()
        misses = 0
        while not self.stop_event.is_set():
            if not self.step():
                misses += 1
                if misses > 100:
                    log.error("camera read failed 100 times in a row; stopping")
                    return 1
            else:
                misses = 0
            if self.cfg.max_frames is not None and self.sent >= self.cfg.max_frames:
                break
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
            else:
                nxt = time.monotonic()
        return 0

    def start_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.serve, name="camera_server", daemon=True)
        t.start()
        self._thread = t
        return t

    def close(self) -> None:
        self.stop_event.set()
        # ZMQ sockets are not thread-safe: let the serving thread finish its send before closing them
        # (closing under it raised ZMQError / could crash the process).
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        for s in self.socks:
            s.close(0)
        for src in self.sources:
            src.release()


def run(cfg: Any) -> int:
    """Entry point of `python run.py mode=camera_server` (config: deploy.robot.camera_server)."""
    sc = robot_config(cfg).camera_server
    server = CameraServer(sc)
    log.info(
        "camera server: %s on %s, %d camera(s), %.0f fps", sc.layout, sc.bind, len(server.sources), sc.fps
    )
    with StopSignal() as stop:
        t = server.start_thread()
        while t.is_alive() and not stop.event.is_set():
            t.join(0.2)
    server.close()
    return 0
