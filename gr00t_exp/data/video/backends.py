"""Video decoding backends (torchcodec, PyAV) behind one interface.

A `VideoReader` gives
- `pts`: presentation time (s) of every frame, in display order (cheap: from the container index);
- `frames_at(indices)`: uint8 RGB frames (N, H, W, 3) for frame indices (random access);
- `decode_all(height, width)`: every frame in order, decoded sequentially (what the frame cache
  uses: ~30x faster per frame than random access on long-GOP video).

Frames are selected by timestamp one level up (`timestamps_to_indices`), identically for both
backends, so a timestamp miss is reported the same way whatever the decoder.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

BACKENDS = ("torchcodec", "pyav")


class VideoDecodeError(RuntimeError):
    pass


class FrameLookupError(KeyError):
    """A requested timestamp has no frame within the tolerance."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class VideoReader(Protocol):
    path: Path
    pts: np.ndarray
    height: int
    width: int

    def frames_at(self, indices: np.ndarray | list[int]) -> np.ndarray: ...

    def decode_all(self, height: int | None = None, width: int | None = None) -> np.ndarray: ...

    def close(self) -> None: ...


def resize_uint8(frames: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of uint8 (N, H, W, 3) frames, staying in uint8."""
    t = torch.as_tensor(frames)
    if t.shape[1] == height and t.shape[2] == width:
        return t.numpy()
    x = t.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    y = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return y.permute(0, 2, 3, 1).contiguous().numpy()


def _demux_pts(path: Path) -> tuple[np.ndarray, int, int, np.ndarray]:
    """Frame pts (s, sorted) from the container's packets without decoding, (H, W), and the
    pts (s, sorted) of the key frames (where a decode can start)."""
    import av

    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            tb = float(s.time_base)
            pts, keys = [], []
            for p in c.demux(s):
                if p.pts is not None and p.size > 0:
                    pts.append(p.pts)
                    if p.is_keyframe:
                        keys.append(p.pts)
            h, w = s.codec_context.height, s.codec_context.width
    except (av.error.FFmpegError, IndexError) as e:
        raise VideoDecodeError(f"cannot read video {path}: {e}") from e
    as_s = lambda v: np.sort(np.asarray(v, dtype=np.float64)) * tb  # noqa: E731
    return as_s(pts), h, w, as_s(keys)


class PyAVReader:
    """PyAV (libav* bundled in the wheel). Random access: seek to the key frame, decode forward."""

    name = "pyav"

    def __init__(self, path: str | Path, threads: int = 1):
        import av

        self.path = Path(path)
        self.threads = threads
        self.pts, self.height, self.width, self.key_pts = _demux_pts(self.path)
        self._av = av
        self._container = None

    def _open(self):
        if self._container is None:
            self._container = self._av.open(str(self.path))
            s = self._container.streams.video[0]
            s.thread_count = self.threads
        return self._container

    def frames_at(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) == 0:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        c = self._open()
        s = c.streams.video[0]
        tb = float(s.time_base)
        order = np.unique(idx)
        wanted = {int(round(self.pts[i] / tb)): int(i) for i in order}
        got: dict[int, np.ndarray] = {}
        # One seek per key frame interval holding targets, then decode forward to its last target:
        # decoding on past the interval's end to reach the next one costs frames a seek skips.
        gop = np.searchsorted(self.key_pts, self.pts[order] + 1e-9, side="right")
        for g in np.unique(gop):
            group = order[gop == g]
            left = len(group)
            c.seek(int(round(self.pts[group[0]] / tb)), stream=s, backward=True, any_frame=False)
            for frame in c.decode(s):
                i = wanted.get(frame.pts)
                if i is not None and i not in got:
                    got[i] = frame.to_ndarray(format="rgb24")
                    left -= 1
                    if left == 0:
                        break
                elif frame.pts is not None and frame.pts * tb > self.pts[group[-1]] + 1e-6:
                    break
        missing = [int(i) for i in order if i not in got]
        if missing:
            raise VideoDecodeError(f"{self.path}: PyAV did not return frames {missing[:5]}")
        return np.stack([got[int(i)] for i in idx])

    def decode_all(self, height: int | None = None, width: int | None = None) -> np.ndarray:
        h, w = height or self.height, width or self.width
        out = np.empty((len(self.pts), h, w, 3), np.uint8)
        n = 0
        with self._av.open(str(self.path)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            s.thread_count = self.threads
            for frame in c.decode(s):
                if n >= len(out):
                    break
                # swscale resizes during the colour conversion (area filter when shrinking)
                if (h, w) == (self.height, self.width):
                    out[n] = frame.to_ndarray(format="rgb24")
                else:
                    out[n] = frame.to_ndarray(format="rgb24", height=h, width=w, interpolation="AREA")
                n += 1
        if n != len(out):
            raise VideoDecodeError(f"{self.path}: decoded {n} frames, container lists {len(out)}")
        return out

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class TorchCodecReader:
    """torchcodec (needs the system FFmpeg libraries; 0.13 pairs with torch 2.13 and FFmpeg 5.1)."""

    name = "torchcodec"

    def __init__(self, path: str | Path, threads: int = 1):
        from torchcodec.decoders import VideoDecoder

        self.path = Path(path)
        try:
            self._dec = VideoDecoder(
                str(self.path), dimension_order="NHWC", num_ffmpeg_threads=threads, seek_mode="exact"
            )
        except (RuntimeError, ValueError) as e:
            raise VideoDecodeError(f"cannot read video {self.path}: {e}") from e
        md = self._dec.metadata
        self.height, self.width = int(md.height), int(md.width)
        self._pts: np.ndarray | None = None

    @property
    def pts(self) -> np.ndarray:
        # torchcodec has no public "all pts" call; the container index gives them without decoding.
        if self._pts is None:
            self._pts = _demux_pts(self.path)[0]
        return self._pts

    def frames_at(self, indices) -> np.ndarray:
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        if not idx:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        return self._dec.get_frames_at(idx).data.numpy()

    def decode_all(self, height: int | None = None, width: int | None = None) -> np.ndarray:
        n = len(self._dec)
        h, w = height or self.height, width or self.width
        out = np.empty((n, h, w, 3), np.uint8)
        step = 64  # bounded memory for long episodes at full resolution
        for a in range(0, n, step):
            b = min(n, a + step)
            out[a:b] = resize_uint8(self._dec.get_frames_in_range(a, b).data, h, w)
        return out

    def close(self) -> None:
        self._dec = None


@lru_cache(maxsize=1)
def torchcodec_status() -> tuple[bool, str]:
    """(loads, reason). Importing torchcodec loads FFmpeg's shared libraries, which can fail."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401

        return True, "torchcodec loaded"
    except Exception as e:  # OSError/RuntimeError/ImportError: missing or mismatched FFmpeg
        msg = str(e).strip().splitlines()
        return False, f"torchcodec unavailable ({type(e).__name__}: {msg[0] if msg else ''})"


def resolve_backend(name: str) -> str:
    """'auto' -> torchcodec when it loads, PyAV otherwise (logging why)."""
    if name == "auto":
        ok, why = torchcodec_status()
        if ok:
            return "torchcodec"
        log.warning(
            "video backend auto: %s; using PyAV. Install FFmpeg (make system-deps) to use torchcodec.", why
        )
        return "pyav"
    if name not in BACKENDS:
        raise ValueError(f"data.video_backend={name!r} is unknown; use one of: auto, {', '.join(BACKENDS)}")
    if name == "torchcodec":
        ok, why = torchcodec_status()
        if not ok:
            raise VideoDecodeError(
                f"data.video_backend=torchcodec but {why}; set data.video_backend=pyav or auto"
            )
    return name


def open_video(path: str | Path, backend: str = "auto", threads: int = 1) -> VideoReader:
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"video file not found: {path}")
    name = resolve_backend(backend)
    return TorchCodecReader(path, threads) if name == "torchcodec" else PyAVReader(path, threads)


def timestamps_to_indices(
    pts: np.ndarray, timestamps: np.ndarray, tolerance_s: float, what: str = ""
) -> np.ndarray:
    """Index of the frame whose pts is within `tolerance_s` of each timestamp, else FrameLookupError."""
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    pos = np.clip(np.searchsorted(pts, ts), 1, max(len(pts) - 1, 1))
    left, right = pts[pos - 1], pts[np.minimum(pos, len(pts) - 1)]
    idx = np.where(np.abs(ts - left) <= np.abs(right - ts), pos - 1, pos)
    idx = np.minimum(idx, len(pts) - 1)
    err = np.abs(pts[idx] - ts)
    bad = np.flatnonzero(err > tolerance_s)
    if len(bad):
        b = int(bad[0])
        raise FrameLookupError(
            f"{what}no video frame at timestamp {ts[b]:.6f}s within tolerance {tolerance_s}s "
            f"(nearest frame pts {pts[idx[b]]:.6f}s; video spans {pts[0]:.6f}-{pts[-1]:.6f}s, {len(pts)} frames). "
            "Check the parquet `timestamp` column against the video, or raise data.timestamp_tolerance_s."
        )
    return idx
