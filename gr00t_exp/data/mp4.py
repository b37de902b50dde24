"""mp4 files of a LeRobot dataset: encoding frames, and cutting / joining files without re-encoding.

Cutting and joining copy compressed packets (PyAV stream copy): no encoder is opened, so every codec
PyAV can demux works, AV1 included (its decoder, libdav1d, has no encoder of that name). A cut that
does not start on a key frame cannot be copied (the frames before it are missing); that span alone
is re-encoded losslessly with an encoder of the same codec family (`LOSSLESS`), so its decoded
frames stay identical, and a warning names the file. Files written by LeRobot, by the synthetic
writer and by `concat_videos` start every episode on a key frame, so this is the exception.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np

log = logging.getLogger(__name__)

# Lossless encoders per codec family (canonical FFmpeg codec name): (encoder, options).
LOSSLESS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"qp": "0", "preset": "veryfast"}),
    "hevc": ("libx265", {"x265-params": "lossless=1"}),
    "av1": ("libsvtav1", {"svtav1-params": "lossless=1"}),
    "vp9": ("libvpx-vp9", {"lossless": "1"}),
}
# Timestamps closer than this (seconds) are the same instant (float from/to timestamps in meta).
EPS_S = 1e-4


def encode_mp4(path: Path, frames: np.ndarray, fps: int, gop: int = 30, crf: int = 18) -> None:
    """H.264 (libx264) yuv420p mp4 with key frames every `gop` frames and B-frames (a real GOP)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "bf": "2",
            "g": str(gop),
            "keyint_min": str(gop),
        }
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def even_frames(frames: np.ndarray) -> np.ndarray:
    """Crop (N, H, W, 3) to even H and W: yuv420p stores chroma at half resolution."""
    h, w = frames.shape[1:3]
    return frames[:, : h - h % 2, : w - w % 2] if h % 2 or w % 2 else frames


def codec_family(stream: av.video.stream.VideoStream) -> str:
    """The canonical codec name ("h264", "av1", ...), not the decoder's name ("libdav1d")."""
    return stream.codec_context.codec.canonical_name


def concat_videos(sources: list[Path], dest: Path) -> list[tuple[float, float]]:
    """Join per-episode mp4s into one by copying packets; return each source's (from, to) seconds.

    Each source's timestamps are shifted by the preceding sources' durations (frames / fps), so
    source k plays at [from_k, to_k) in dest, as LeRobot v3.0 records episode spans. The sources
    must share codec, size and codec header (true for one camera of one dataset); otherwise the
    copied packets would not decode, so that is an error naming the file.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    spans: list[tuple[float, float]] = []
    with av.open(str(dest), "w") as out:
        ostream = None
        first_params: Optional[tuple] = None
        offset = Fraction(0)
        for src in sources:
            with av.open(str(src)) as inp:
                istream = inp.streams.video[0]
                cc = istream.codec_context
                params = (codec_family(istream), cc.width, cc.height, cc.pix_fmt, bytes(cc.extradata or b""))
                if ostream is None:
                    # opaque: copy the codec parameters as they are, never look up an encoder
                    ostream = out.add_stream_from_template(istream, opaque=True)
                    first_params = params
                elif params != first_params:
                    raise ValueError(
                        f"{src}: codec/size/header differ from {sources[0]} "
                        f"({params[:4]} vs {first_params[:4]}); packets cannot be joined. "
                        "Fix: re-encode this camera's episodes with one encoder setting"
                    )
                tb = istream.time_base
                rate = Fraction(istream.average_rate or istream.guessed_rate)
                packets = [p for p in inp.demux(istream) if p.size]
                if not packets:
                    raise ValueError(f"{src}: no video packets. Fix: re-export this episode's video")
                shift = int(round(offset / tb)) - min(p.pts for p in packets)
                for p in packets:
                    p.pts += shift
                    if p.dts is not None:
                        p.dts += shift
                    p.stream = ostream
                    p.time_base = tb
                    out.mux(p)
                duration = len(packets) / rate
                spans.append((float(offset), float(offset + duration)))
                offset += duration
    return spans


def _in_span(pts_s: float, start_s: float, end_s: float) -> bool:
    return start_s - EPS_S <= pts_s < end_s - EPS_S


def cut_video(src: Path, dest: Path, start_s: float, end_s: float) -> str:
    """Write the frames of src with pts in [start_s, end_s) to dest, starting at pts 0.

    Returns "remux" (packets copied) or "reencode" (the span does not start on a key frame: decoded
    and re-encoded losslessly with the same codec family; frames identical, file larger).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp:
        istream = inp.streams.video[0]
        tb = istream.time_base
        family = codec_family(istream)
        packets = [p for p in inp.demux(istream) if p.size and _in_span(float(p.pts * tb), start_s, end_s)]
    if not packets:
        raise ValueError(
            f"{src}: no frames in [{start_s}, {end_s}). Fix: check the episode's "
            "videos/<key>/from_timestamp and to_timestamp in meta/episodes"
        )
    first_decoded = min(packets, key=lambda p: p.dts if p.dts is not None else p.pts)
    if first_decoded.is_keyframe and first_decoded.pts == min(p.pts for p in packets):
        _copy_packets(src, dest, packets)
        return "remux"
    log.warning(
        "%s: the span [%.3f, %.3f) does not start on a key frame: re-encoding it losslessly (%s)",
        src,
        start_s,
        end_s,
        family,
    )
    _reencode_span(src, dest, start_s, end_s, family)
    return "reencode"


def _copy_packets(src: Path, dest: Path, packets: list[av.Packet]) -> None:
    shift = -min(p.pts for p in packets)
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        istream = inp.streams.video[0]
        ostream = out.add_stream_from_template(istream, opaque=True)
        for p in packets:
            p.pts += shift
            if p.dts is not None:
                p.dts += shift
            p.stream = ostream
            p.time_base = istream.time_base
            out.mux(p)


@contextlib.contextmanager
def _keep_thread_scheduling() -> Iterator[None]:
    """Restore the calling thread's scheduling policy afterwards: SVT-AV1, run as root, switches
    the thread that opens it to SCHED_FIFO, which would outlive the encode (and starve the
    machine's other work from a data-conversion job)."""
    if not hasattr(os, "sched_getscheduler"):
        yield
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if os.sched_getscheduler(0) != policy:
            with contextlib.suppress(OSError):  # dropping back to SCHED_OTHER is always allowed
                os.sched_setscheduler(0, policy, param)


def _reencode_span(src: Path, dest: Path, start_s: float, end_s: float, family: str) -> None:
    if family not in LOSSLESS:
        raise ValueError(
            f"{src}: the span [{start_s}, {end_s}) does not start on a key frame and there is no "
            f"lossless {family} encoder to re-encode it (known: {sorted(LOSSLESS)}). "
            "Fix: re-encode the source with a key frame at every episode start"
        )
    encoder, options = LOSSLESS[family]
    with _keep_thread_scheduling(), av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        istream = inp.streams.video[0]
        tb = istream.time_base
        rate = Fraction(istream.average_rate or istream.guessed_rate)
        ostream = out.add_stream(encoder, rate=rate)
        ostream.width, ostream.height = istream.codec_context.width, istream.codec_context.height
        ostream.pix_fmt = istream.codec_context.pix_fmt or "yuv420p"
        ostream.options = dict(options)
        n = 0
        for frame in inp.decode(istream):
            if not _in_span(float(frame.pts * tb), start_s, end_s):
                continue
            frame.pts = n
            frame.time_base = 1 / rate
            n += 1
            for p in ostream.encode(frame):
                out.mux(p)
        for p in ostream.encode():
            out.mux(p)


def sampled_frames(
    path: Path, start_s: float = 0.0, end_s: float = float("inf"), step: int = 1
) -> tuple[int, list[np.ndarray]]:
    """(number of frames in [start_s, end_s), every `step`-th of them as raw planes, no colour
    conversion): every frame is decoded, only the sampled ones are kept."""
    kept: list[np.ndarray] = []
    n = 0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for frame in c.decode(stream):
            if not _in_span(float(frame.pts * stream.time_base), start_s, end_s):
                continue
            if n % step == 0:
                kept.append(frame.to_ndarray())
            n += 1
    return n, kept


def frames_equal(a: Path, b: Path, step: int = 1) -> bool:
    """True if both videos have as many frames and the same decoded planes (every `step`-th compared)."""
    (na, fa), (nb, fb) = sampled_frames(a, step=step), sampled_frames(b, step=step)
    return na == nb and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
