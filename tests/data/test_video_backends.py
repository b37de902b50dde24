"""Video backends: frames by timestamp equal sequential decode, for torchcodec and PyAV."""

from __future__ import annotations

import numpy as np
import pytest

from gr00t_exp.data.video import (
    BACKENDS,
    FrameLookupError,
    VideoDecodeError,
    open_video,
    timestamps_to_indices,
)
from gr00t_exp.data.video.backends import resolve_backend, torchcodec_status


def _video(root, ep=0, key="observation.images.ego_view"):
    return root / f"videos/chunk-000/{key}/episode_{ep:06d}.mp4"


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_access_equals_sequential_synthetic(synthetic_dataset, backend):
    path = _video(synthetic_dataset, 1)
    r = open_video(path, backend)
    seq = r.decode_all()
    assert seq.dtype == np.uint8 and seq.shape == (len(r.pts), r.height, r.width, 3)
    idx = [len(seq) - 1, 0, 7, 7, 3]
    got = r.frames_at(idx)
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(got[k], seq[i])
    # timestamps at the frame pts (with sub-tolerance jitter) select exactly those frames
    ts = r.pts[idx] + np.array([4e-5, -4e-5, 0, 3e-5, 0])
    np.testing.assert_array_equal(timestamps_to_indices(r.pts, ts, 1e-4), idx)


def test_backends_agree_bit_exact(synthetic_dataset):
    if not torchcodec_status()[0]:
        pytest.skip(torchcodec_status()[1])
    a = open_video(_video(synthetic_dataset, 0), "torchcodec").decode_all()
    b = open_video(_video(synthetic_dataset, 0), "pyav").decode_all()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pick_place_timestamps_vs_pts(pick_place, backend):
    """PickNPlace parquet timestamps start at 0.05 while the video's pts start at 0: row i is frame i
    shifted by one frame period. Frames fetched by (aligned) timestamp equal sequential decode."""
    import pyarrow.parquet as pq

    ts = pq.read_table(pick_place / "data/chunk-000/episode_000004.parquet", columns=["timestamp"])
    ts = ts.column(0).to_numpy()
    r = open_video(_video(pick_place, 4, "observation.images.ego_view"), backend)
    assert len(r.pts) == len(ts)
    assert r.pts[0] == 0.0 and abs(ts[0] - 0.05) < 1e-4
    aligned = ts - (ts[0] - r.pts[0])
    rows = np.array([0, 1, 250, len(ts) - 1])
    idx = timestamps_to_indices(r.pts, aligned[rows], 1e-4)
    np.testing.assert_array_equal(idx, rows)
    seq = r.decode_all()
    np.testing.assert_array_equal(r.frames_at(idx), seq[rows])
    # unaligned, the last row's timestamp lies past the last frame: a miss that names the time
    with pytest.raises(FrameLookupError, match=r"timestamp 16\.3999"):
        timestamps_to_indices(r.pts, ts[-1:], 1e-4)


class _CountingContainer:
    """A PyAV container that counts its seeks (the decode work a seek starts)."""

    def __init__(self, container):
        self._c, self.seeks = container, 0

    def seek(self, *a, **kw):
        self.seeks += 1
        return self._c.seek(*a, **kw)

    def __getattr__(self, name):
        return getattr(self._c, name)


def test_pyav_seeks_once_per_key_frame_interval(tmp_path):
    """Unsorted targets (with repeats) decode with one seek per key frame interval holding any, and
    equal the sequential decode, in the order asked."""
    import av

    from gr00t_exp.data.mp4 import encode_mp4

    rng = np.random.default_rng(0)
    path = tmp_path / "gop10.mp4"
    encode_mp4(path, rng.integers(0, 255, (100, 32, 48, 3), dtype=np.uint8), fps=20, gop=10)
    r = open_video(path, "pyav")
    assert len(r.key_pts) >= 9 and r.key_pts[0] == 0.0
    seq = r.decode_all()
    r._container = _CountingContainer(av.open(str(path)))
    idx = [95, 3, 4, 57, 12, 3, 58, 99]
    got = r.frames_at(idx)
    intervals = {int(np.searchsorted(r.key_pts, r.pts[i], side="right")) for i in idx}
    assert 3 <= len(intervals) < len(set(idx)) and r._container.seeks == len(intervals)
    np.testing.assert_array_equal(got, seq[idx])


def test_lookup_miss_message():
    pts = np.arange(10) / 20
    with pytest.raises(
        FrameLookupError, match=r"episode 3 video\.ego_view: no video frame at timestamp 0\.126"
    ):
        timestamps_to_indices(pts, [0.126], 1e-4, what="episode 3 video.ego_view: ")


def test_resize_on_decode(synthetic_dataset):
    r = open_video(_video(synthetic_dataset, 0), "pyav")
    small = r.decode_all(32, 48)
    assert small.shape == (len(r.pts), 32, 48, 3)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(VideoDecodeError, match="not found"):
        open_video(tmp_path / "nope.mp4", "pyav")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        open_video(bad, "pyav")


def test_resolve_backend():
    assert resolve_backend("pyav") == "pyav"
    assert resolve_backend("auto") in BACKENDS
    with pytest.raises(ValueError, match="data.video_backend"):
        resolve_backend("decord")
