"""Frame cache: equals direct decode, reused, invalidated on source change, atomic."""

from __future__ import annotations

import os
import shutil

import numpy as np

from gr00t_exp.data.video import FrameCache, open_video


def _video(root, ep=0):
    return root / f"videos/chunk-000/observation.images.ego_view/episode_{ep:06d}.mp4"


def test_cache_equals_direct_decode(synthetic_dataset, tmp_path):
    src = _video(synthetic_dataset, 2)
    cache = FrameCache(tmp_path / "c", backend="pyav")
    cv = cache.get(src)
    direct = open_video(src, "pyav")
    assert isinstance(cv.frames, np.memmap)
    np.testing.assert_array_equal(np.asarray(cv.frames), direct.decode_all())
    np.testing.assert_array_equal(cv.pts, direct.pts)
    # resized cache equals a resized decode
    small = FrameCache(tmp_path / "c", height=32, width=32, backend="pyav").get(src)
    assert small.frames.shape[1:] == (32, 32, 3)
    assert cache.entry_dir(src) != FrameCache(tmp_path / "c", 32, 32).entry_dir(src)


def test_cache_reused_and_invalidated(synthetic_dataset, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(synthetic_dataset / "videos", ds)
    a = ds / "chunk-000/observation.images.ego_view/episode_000000.mp4"
    b = ds / "chunk-000/observation.images.ego_view/episode_000001.mp4"
    cache = FrameCache(tmp_path / "c", backend="pyav")
    d1 = cache.build(a)
    mtime = (d1 / "frames.npy").stat().st_mtime_ns
    assert FrameCache(tmp_path / "c", backend="pyav").build(a) == d1  # another run: reused
    assert (d1 / "frames.npy").stat().st_mtime_ns == mtime
    # replace the source (different content): a new entry with the new frames
    shutil.copyfile(b, a)
    os.utime(a, ns=(mtime + 10**9, mtime + 10**9))
    fresh = FrameCache(tmp_path / "c", backend="pyav")
    d2 = fresh.entry_dir(a)
    assert d2 != d1 and not fresh.is_cached(a)
    np.testing.assert_array_equal(np.asarray(fresh.get(a).frames), open_video(b, "pyav").decode_all())
    assert fresh.prune() == 1 and not d1.exists() and d2.exists()
    assert not list((tmp_path / "c").glob(".*"))  # no temporary leftovers


def test_cache_concurrent_builders(synthetic_dataset, tmp_path):
    """Several processes building the same entry: one wins, all read identical frames."""
    import multiprocessing as mp

    src = _video(synthetic_dataset, 3)
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        dirs = pool.starmap(_build, [(str(tmp_path / "c"), str(src))] * 4)
    assert len(set(dirs)) == 1
    cv = FrameCache(tmp_path / "c", backend="pyav").get(src)
    np.testing.assert_array_equal(np.asarray(cv.frames), open_video(src, "pyav").decode_all())
    assert [p.name for p in (tmp_path / "c").iterdir()] == [os.path.basename(dirs[0])]


def _build(cache_dir, src):
    return str(FrameCache(cache_dir, backend="pyav").build(src))
