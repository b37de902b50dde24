"""Gr00tDataset / MixtureDataset on the synthetic dataset (and one PickNPlace check)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from gr00t_exp.data.dataset import Gr00tDataset, MixtureDataset
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.stats import compute_stats
from gr00t_exp.data.video import FrameCache, FrameLookupError, open_video


@pytest.fixture(scope="module")
def meta(synthetic_dataset, gr1_embodiment):
    return load_meta(synthetic_dataset, gr1_embodiment)


@pytest.fixture(scope="module")
def stats(meta):
    return compute_stats(meta)


def test_sample_contract(meta, stats, gr1_embodiment, tmp_path):
    ds = Gr00tDataset(meta, gr1_embodiment, stats, frame_cache=FrameCache(tmp_path, backend="pyav"))
    assert len(ds) == sum(e.length for e in meta.episodes)
    s = ds[5]
    assert s["video"].shape == (1, 1, 224, 224, 3) and s["video"].dtype == np.uint8
    assert s["state"].shape == (1, 64) and s["state"].dtype == np.float32
    assert s["state_mask"].shape == (1, 64) and s["state_mask"].dtype == bool
    # gr1 arms-only: 4 keys (7+7+6+6 = 26 dims) in sin_cos -> 52 state dims; actions 26
    assert s["state_mask"].sum() == 52 and s["action_mask"][0].sum() == 26
    assert s["action"].shape == (16, 32) and s["action"].dtype == np.float32
    assert s["embodiment_id"] == 24 and s["embodiment_id"].dtype == np.int64
    assert isinstance(s["language"], str) and s["language"]
    assert np.all(np.abs(s["action"]) <= 1 + 1e-5)  # min_max of in-range data


@pytest.mark.parametrize("backend", ["pyav", "torchcodec"])
def test_frames_match_sequential_decode_cached_and_uncached(meta, stats, gr1_embodiment, tmp_path, backend):
    from gr00t_exp.data.video.backends import torchcodec_status

    if backend == "torchcodec" and not torchcodec_status()[0]:
        pytest.skip(torchcodec_status()[1])
    ep = meta.episodes[1].index
    seq = open_video(meta.video_path(ep, "observation.images.ego_view"), "pyav").decode_all()
    plain = Gr00tDataset(meta, gr1_embodiment, stats, transform=False, video_backend=backend)
    cached = Gr00tDataset(
        meta, gr1_embodiment, stats, transform=False, frame_cache=FrameCache(tmp_path, backend=backend)
    )
    length = meta.episodes[1].length
    for base in (0, 3, length - 1):
        for ds in (plain, cached):
            np.testing.assert_array_equal(ds.raw_sample(ep, base)["video"][0, 0], seq[base])


@pytest.mark.parametrize("backend", ["pyav", "torchcodec"])
def test_batched_fetch_equals_per_sample(meta, stats, gr1_embodiment, backend):
    """A batch (several samples per episode, repeats, unsorted) decodes each (episode, view) once,
    sorted, and gives every sample the frames it gets alone."""
    from gr00t_exp.data.video.backends import torchcodec_status

    if backend == "torchcodec" and not torchcodec_status()[0]:
        pytest.skip(torchcodec_status()[1])
    ds = Gr00tDataset(meta, gr1_embodiment, stats, transform=False, video_backend=backend)
    a, b = meta.episodes[0], meta.episodes[1]
    locs = [(b.index, b.length - 1), (a.index, 5), (b.index, 0), (a.index, 2), (a.index, 5), (b.index, 31)]
    calls = []
    source = ds._video_source

    def counting(ep, key):
        path, pts, fetch = source(ep, key)
        return path, pts, lambda idx: calls.append((ep, list(idx))) or fetch(idx)

    ds._video_source = counting
    batch = ds.samples_at(locs)
    assert sorted(c[0] for c in calls) == [a.index, b.index]
    assert all(c[1] == sorted(set(c[1])) for c in calls)
    ds._video_source = source
    for (ep, base), got in zip(locs, batch, strict=True):
        np.testing.assert_array_equal(got["video"], ds.raw_sample(ep, base)["video"])
        np.testing.assert_array_equal(got["action.left_arm"], ds.raw_sample(ep, base)["action.left_arm"])


def test_raw_sample_padding(meta, stats, gr1_embodiment):
    ds = Gr00tDataset(meta, gr1_embodiment, stats, transform=False, video_backend="pyav")
    ep, length = meta.episodes[0].index, meta.episodes[0].length
    rows = meta.read_episode(ep, ["action"])["action"]
    r = ds.raw_sample(ep, length - 3)
    a = r["action.left_arm"]
    assert a.shape == (16, 7)
    np.testing.assert_array_equal(a[:3], rows[length - 3 :, 0:7])
    np.testing.assert_array_equal(a[3:], np.repeat(rows[-1:, 0:7], 13, 0))  # absolute: repeat last


def test_relative_keys_pad_zeros(synthetic_dataset, gr1_embodiment, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(synthetic_dataset, root)
    mod_file = root / "meta/modality.json"
    mod = json.loads(mod_file.read_text())
    mod["action"]["left_arm"]["absolute"] = False
    mod_file.write_text(json.dumps(mod))
    meta = load_meta(root, gr1_embodiment)
    ds = Gr00tDataset(meta, gr1_embodiment, None, transform=False, video_backend="pyav")
    ep, length = meta.episodes[0].index, meta.episodes[0].length
    r = ds.raw_sample(ep, length - 2)
    assert np.all(r["action.left_arm"][2:] == 0) and np.any(r["action.left_arm"][:2] != 0)
    assert np.all(r["action.right_arm"][2:] == r["action.right_arm"][1])


def test_timestamp_miss_names_episode_key_time(synthetic_dataset, gr1_embodiment, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "ds"
    shutil.copytree(synthetic_dataset, root)
    meta = load_meta(root, gr1_embodiment)
    ep = meta.episodes[2].index
    p = meta.parquet_path(ep)
    t = pq.read_table(p)
    ts = t.column("timestamp").to_numpy().copy()
    ts[4] += 0.013  # a jittered timestamp, off the frame grid
    pq.write_table(t.set_column(t.schema.get_field_index("timestamp"), "timestamp", pa.array(ts)), p)
    ds = Gr00tDataset(meta, gr1_embodiment, None, transform=False, video_backend="pyav")
    with pytest.raises(FrameLookupError, match=rf"episode {ep} video.ego_view .*timestamp {ts[4]:.4f}"):
        ds.raw_sample(ep, 0)


def test_pick_place_alignment(pick_place, gr1_embodiment, tmp_path):
    meta = load_meta(pick_place, gr1_embodiment)
    ds = Gr00tDataset(meta, gr1_embodiment, None, transform=False, frame_cache=FrameCache(tmp_path, 64, 64))
    last = meta.episodes[-1]
    m = ds.frame_map(last.index, "ego_view")
    np.testing.assert_array_equal(m, np.arange(last.length))  # row i -> frame i
    strict = Gr00tDataset(
        meta,
        gr1_embodiment,
        None,
        transform=False,
        frame_cache=FrameCache(tmp_path, 64, 64),
        align_timestamps=False,
    )
    with pytest.raises(FrameLookupError, match=f"episode {last.index} video.ego_view"):
        strict.frame_map(last.index, "ego_view")


def test_train_augments_eval_does_not(meta, stats, gr1_embodiment):
    tr = Gr00tDataset(meta, gr1_embodiment, stats, training=True, video_backend="pyav")
    ev = Gr00tDataset(meta, gr1_embodiment, stats, training=False, video_backend="pyav")
    assert not np.array_equal(tr[3]["video"], tr[3]["video"])
    np.testing.assert_array_equal(ev[3]["video"], ev[3]["video"])
    np.testing.assert_array_equal(tr[3]["state"], ev[3]["state"])
    batch = ev.__getitems__([0, 3, 7])
    np.testing.assert_array_equal(batch[1]["video"], ev[3]["video"])


def test_mixture_weights(meta, stats, gr1_embodiment):
    eps = [e.index for e in meta.episodes]
    a = Gr00tDataset(meta, gr1_embodiment, stats, episodes=eps[:1], transform=False, video_backend="pyav")
    b = Gr00tDataset(meta, gr1_embodiment, stats, episodes=eps[1:], transform=False, video_backend="pyav")
    n = 4000
    for balance in (False, True):
        mix = MixtureDataset([a, b], [1.0, 0.5], balance_dataset_weights=balance, seed=1)
        p = np.array([1.0, 0.5]) * (np.array([len(a), len(b)]) if balance else 1)
        p = p / p.sum()
        np.testing.assert_allclose(mix.probs, p)
        draws = [mix.draw(i) for i in range(n)]
        frac_a = np.mean([d[0] == 0 for d in draws])
        assert abs(frac_a - p[0]) < 4 * np.sqrt(p[0] * (1 - p[0]) / n)
        assert len(mix) == int(np.ceil(len(a) / p[0]))  # a is the primary (largest weight)
    # trajectory balance: episodes drawn in proportion to their length
    mix = MixtureDataset([b], [1.0], seed=2)
    counts = np.bincount([eps.index(mix.draw(i)[1]) - 1 for i in range(n)], minlength=len(b.lengths))
    expect = np.asarray(b.lengths) / sum(b.lengths)
    np.testing.assert_allclose(counts / n, expect, atol=0.04)
    # deterministic per (seed, epoch, index); a new epoch draws differently
    assert mix.draw(7) == MixtureDataset([b], [1.0], seed=2).draw(7)
    mix.set_epoch(1)
    assert [mix.draw(i) for i in range(20)] != [MixtureDataset([b], [1.0], seed=2).draw(i) for i in range(20)]
    s = mix.__getitems__([0, 1])
    assert s[0]["video"].shape[:2] == (1, 1)
