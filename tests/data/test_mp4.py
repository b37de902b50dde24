"""Cutting and joining mp4s without an encoder (any codec, AV1 included), and the lossless re-encode
of a cut that does not start on a key frame."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from gr00t_exp.data.mp4 import concat_videos, cut_video, encode_mp4, even_frames, sampled_frames
from tests.fixtures import shared_path

AV1_CHUNK = (
    "datasets",
    "lerobot_v30_av1",
    "videos",
    "observation.images.cam_high",
    "chunk-000",
    "file-000.mp4",
)


def _planes(path: Path) -> list[np.ndarray]:
    return sampled_frames(path)[1]


def _keyframes(path: Path) -> list[bool]:
    with av.open(str(path)) as c:
        return [p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size]


def test_h264_cut_off_key_frame_reencodes_losslessly(synthetic_dataset: Path, tmp_path: Path):
    src = synthetic_dataset / "videos/chunk-000/observation.images.ego_view/episode_000000.mp4"
    frames = _planes(src)
    assert cut_video(src, tmp_path / "cut.mp4", 5 / 20, 15 / 20) == "reencode"  # frame 5: no key frame
    cut = _planes(tmp_path / "cut.mp4")
    assert len(cut) == 10 and all(np.array_equal(x, y) for x, y in zip(cut, frames[5:15], strict=True))
    assert cut_video(src, tmp_path / "head.mp4", 0.0, 10 / 20) == "remux"
    head = _planes(tmp_path / "head.mp4")
    assert len(head) == 10 and all(np.array_equal(x, y) for x, y in zip(head, frames[:10], strict=True))


def test_av1_cut_copies_packets_and_reencodes_off_key_frame(tmp_path: Path):
    src = shared_path(*AV1_CHUNK)
    keys = _keyframes(src)
    frames = _planes(src)
    fps = 15
    # LeRobot's episode 1 starts at frame 30 (2.0 s), a key frame: copied as is
    assert keys[30] and cut_video(src, tmp_path / "ep1.mp4", 2.0, 71 / fps) == "remux"
    ep1 = _planes(tmp_path / "ep1.mp4")
    assert len(ep1) == 41 and all(np.array_equal(x, y) for x, y in zip(ep1, frames[30:71], strict=True))
    with av.open(str(tmp_path / "ep1.mp4")) as c:
        assert c.streams.video[0].codec_context.codec.canonical_name == "av1"
    # frame 1 is not a key frame: re-encoded losslessly, still AV1
    assert not keys[1]
    assert cut_video(src, tmp_path / "off.mp4", 1 / fps, 9 / fps) == "reencode"
    off = _planes(tmp_path / "off.mp4")
    assert len(off) == 8 and all(np.array_equal(x, y) for x, y in zip(off, frames[1:9], strict=True))
    with av.open(str(tmp_path / "off.mp4")) as c:
        assert c.streams.video[0].codec_context.codec.canonical_name == "av1"


def test_concat_av1_episodes_and_spans(tmp_path: Path):
    src = shared_path(*AV1_CHUNK)
    for i, (a, b) in enumerate([(0, 30), (30, 71)]):
        cut_video(src, tmp_path / f"ep{i}.mp4", a / 15, b / 15)
    spans = concat_videos([tmp_path / "ep0.mp4", tmp_path / "ep1.mp4"], tmp_path / "joined.mp4")
    assert spans == [(0.0, 2.0), (2.0, pytest.approx(71 / 15))]
    frames = _planes(src)[:71]
    joined = _planes(tmp_path / "joined.mp4")
    assert len(joined) == 71 and all(np.array_equal(x, y) for x, y in zip(joined, frames, strict=True))


def test_concat_refuses_different_encodings(tmp_path: Path):
    frames = np.zeros((6, 32, 32, 3), np.uint8)
    encode_mp4(tmp_path / "a.mp4", frames, 20)
    encode_mp4(tmp_path / "b.mp4", np.zeros((6, 16, 16, 3), np.uint8), 20)
    with pytest.raises(ValueError, match="b.mp4: codec/size/header differ"):
        concat_videos([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "out.mp4")


def test_even_frames():
    assert even_frames(np.zeros((2, 5, 7, 3), np.uint8)).shape == (2, 4, 6, 3)
    same = np.zeros((1, 4, 6, 3), np.uint8)
    assert even_frames(same) is same


def test_reencode_leaves_the_callers_scheduling_as_it_was(tmp_path: Path):
    # SVT-AV1 run as root switches the thread that opens it to SCHED_FIFO
    src = shared_path(*AV1_CHUNK)
    before = os.sched_getscheduler(0)
    assert cut_video(src, tmp_path / "off.mp4", 1 / 15, 9 / 15) == "reencode"
    assert os.sched_getscheduler(0) == before
