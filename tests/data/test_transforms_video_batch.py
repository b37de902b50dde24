"""Batched device-side augmentation (transforms/video_batch.py) against the CPU reference
(VideoTransform): equal up to rounding for the same draws, the same distributions otherwise, and
the deferred dataset -> collate -> BatchAugment pipeline equal to the CPU pipeline."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gr00t_exp.data.collate import Gr00tCollator
from gr00t_exp.data.factory import make_dataset
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.stats import load_or_compute_stats
from gr00t_exp.data.transforms import VideoTransform
from gr00t_exp.data.transforms.video_batch import BatchAugment, augment_frames, crop_resize

NO_JITTER = dict(brightness=0, contrast=0, saturation=0, hue=0)


def _noise(b: int, n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, n, h, w, 3), dtype=np.uint8)


def _scene(h: int, w: int) -> np.ndarray:
    """A smooth colour image (gradients + a patch), closer to camera frames than noise."""
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    img = np.stack([40 + 170 * xx, 60 + 120 * yy, 200 - 150 * xx * yy], axis=-1)
    img[h // 4 : h // 2, w // 3 : w // 2] = (220, 40, 30)
    return img.round().astype(np.uint8)


def _device_params(vt: VideoTransform, b: int, h: int, w: int, seed: int) -> dict:
    p = vt.sample_params(b, h, w, torch.Generator().manual_seed(seed))
    ch, cw = vt.crop_size(h, w)
    return {**p, "crop_h": ch, "crop_w": cw, "size": vt.resize}


def _device_out(vt: VideoTransform, x: np.ndarray, seed: int) -> np.ndarray:
    """The device path on CPU tensors, as uint8 (B, N, S, S, 3) like the CPU path's output."""
    b, h, w = x.shape[0], x.shape[-3], x.shape[-2]
    y = augment_frames(torch.from_numpy(x), _device_params(vt, b, h, w, seed))
    return y.permute(0, 1, 3, 4, 2).to(torch.uint8).numpy()


@pytest.mark.parametrize(
    "kw",
    [{}, NO_JITTER, {"training": False}],
    ids=["train", "crop_resize_only", "eval"],
)
def test_same_draws_give_the_cpu_output_up_to_rounding(kw):
    x = _noise(6, 3, 48, 56)
    vt = VideoTransform(resize=32, **kw)
    ref = vt.batch(x, torch.Generator().manual_seed(5)).astype(int)
    out = _device_out(vt, x, 5).astype(int)
    diff = np.abs(out - ref)
    # Noise is the worst case for the resize's rounding (fixed-point uint8 kernel vs float32).
    assert diff.max() <= 2 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())


def test_jitter_alone_is_exact():
    """No resize (crop 1.0, size kept): the folded colour map and its rounding are the CPU path's.
    Exact on the CI machine; a CPU with other vector kernels may round a value that lands on a
    half level the other way (seen: 1 of 124,416 values, 1 level apart), so that much is allowed."""
    x = _noise(6, 3, 48, 48)
    vt = VideoTransform(crop_scale=1.0, resize=48)
    got = _device_out(vt, x, 5).astype(int)
    want = vt.batch(x, torch.Generator().manual_seed(5)).astype(int)
    diff = np.abs(got - want)
    assert diff.max() <= 1, diff.max()
    assert np.count_nonzero(diff) <= max(1, diff.size // 50_000), np.count_nonzero(diff)


def test_crop_is_the_same_window_exactly():
    """No resize (crop 38 of 40 -> 38): the gathered crop is exactly the CPU path's slice."""
    x = _noise(8, 2, 40, 40, seed=1)
    vt = VideoTransform(crop_scale=0.95, resize=38, **NO_JITTER)
    ref = vt.batch(x, torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(_device_out(vt, x, 2), ref)


def test_crop_resize_uses_each_samples_offsets():
    x = torch.from_numpy(_noise(3, 1, 12, 12, seed=2))
    top, left = torch.tensor([0, 1, 2]), torch.tensor([2, 0, 1])
    y = crop_resize(x, top, left, (10, 10), 10)
    for i in range(3):
        want = x[i, 0, top[i] : top[i] + 10, left[i] : left[i] + 10].permute(2, 0, 1).float()
        torch.testing.assert_close(y[i, 0], want, rtol=0, atol=0)


def test_crop_offsets_and_jitter_draws_have_the_configured_distributions():
    """The draws both paths apply (`sample_params`): uniform offsets, factors and orders."""
    vt = VideoTransform()
    p = vt.sample_params(4800, 256, 200, torch.Generator().manual_seed(0))
    ch, cw = vt.crop_size(256, 200)
    for key, span in (("top", 256 - ch + 1), ("left", 200 - cw + 1)):
        counts = np.bincount(p[key].numpy(), minlength=span)
        assert len(counts) == span  # never outside [0, H - crop]
        expected = 4800 / span
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < span - 1 + 5 * np.sqrt(2 * (span - 1)), (key, chi2)
    for key, lo, hi in (
        ("brightness", 0.7, 1.3),
        ("contrast", 0.6, 1.4),
        ("saturation", 0.5, 1.5),
        ("hue", -0.08, 0.08),
    ):
        v = p[key].numpy()
        assert lo <= v.min() and v.max() <= hi
        # mean and variance of U(lo, hi) within 5 standard errors
        assert abs(v.mean() - (lo + hi) / 2) < 5 * (hi - lo) / np.sqrt(12 * 4800)
        assert abs(v.var() - (hi - lo) ** 2 / 12) < 0.1 * (hi - lo) ** 2 / 12
    perms = {tuple(r) for r in p["order"].tolist()}
    assert perms == set(itertools.permutations(range(4)))


def test_pixel_statistics_match_the_cpu_path_over_independent_draws():
    """A batch of one fixed frame, augmented by each path with its own seeds: the per-channel
    mean and spread of the outputs agree within sampling error."""
    frame = _scene(40, 48)
    x = np.ascontiguousarray(np.broadcast_to(frame, (400, 1, 40, 48, 3)))
    vt = VideoTransform(resize=32)
    cpu = vt.batch(x, torch.Generator().manual_seed(10)).astype(np.float64)
    dev = _device_out(vt, x, 11).astype(np.float64)
    per_sample = lambda a: a.reshape(400, -1, 3).mean(axis=1)  # noqa: E731
    m_cpu, m_dev = per_sample(cpu), per_sample(dev)
    se = np.sqrt(m_cpu.var(axis=0) / 400 + m_dev.var(axis=0) / 400)
    assert (np.abs(m_cpu.mean(axis=0) - m_dev.mean(axis=0)) < 5 * se).all()
    assert np.allclose(m_cpu.std(axis=0), m_dev.std(axis=0), rtol=0.2)
    assert np.allclose(cpu.std(axis=(0, 1, 2, 3)), dev.std(axis=(0, 1, 2, 3)), rtol=0.05)
    # ...and not trivially: the draws differ, so the individual outputs do
    assert not np.array_equal(cpu, dev)


def test_batch_augment_normalises_like_the_processor_and_passes_other_batches():
    x = _noise(2, 2, 36, 36, seed=3)
    vt = VideoTransform(resize=32)
    aug = {
        **_device_params(vt, 2, 36, 36, 4),
        "mean": torch.full((3,), 127.5),
        "std": torch.full((3,), 127.5),
    }
    batch = {"video": torch.from_numpy(x), "augment": aug, "state": torch.zeros(2, 1, 64)}
    out = BatchAugment()(batch)
    assert set(out) == {"eagle_pixel_values", "state"}
    pv = out["eagle_pixel_values"]
    assert pv.shape == (4, 3, 32, 32) and pv.dtype == torch.float32
    want = (
        torch.from_numpy(_device_out(vt, x, 4)).reshape(4, 32, 32, 3).permute(0, 3, 1, 2).float() - 127.5
    ) / 127.5
    torch.testing.assert_close(pv, want, rtol=0, atol=1e-6)
    plain = {"eagle_pixel_values": torch.zeros(1), "state": torch.ones(1)}
    assert BatchAugment()(dict(plain)) == plain


@pytest.fixture(scope="module")
def processor():
    from gr00t_exp.model.processor import Gr00tProcessor

    return Gr00tProcessor.from_pretrained(None)


def test_deferred_pipeline_equals_the_cpu_pipeline(synthetic_dataset, gr1_embodiment, processor, tmp_path):
    """Same generator: dataset (deferred) -> collate -> BatchAugment == dataset -> collate (CPU)."""
    from gr00t_exp.config.compose import compose_config

    cfg = compose_config([]).data
    meta = load_meta(synthetic_dataset, gr1_embodiment)
    stats = load_or_compute_stats(meta, tmp_path)
    ds = make_dataset(cfg, meta, gr1_embodiment, stats, episodes=[0, 1], training=True, frame_cache=None)
    locs = [ds.locate(i) for i in (0, 5, 17, 30)]
    collate = Gr00tCollator(processor)
    cpu = collate(ds.samples_at(locs, torch.Generator().manual_seed(8)))
    ds.defer_video_augment = True
    deferred = collate(ds.samples_at(locs, torch.Generator().manual_seed(8)))
    assert deferred["video"].dtype == torch.uint8 and deferred["video"].shape[:3] == (4, 1, 1)
    assert "eagle_pixel_values" not in deferred
    dev = BatchAugment()(deferred)
    assert set(dev) == set(cpu)
    for k in cpu:
        if k != "eagle_pixel_values":
            torch.testing.assert_close(dev[k], cpu[k], rtol=0, atol=0)
    diff = (dev["eagle_pixel_values"] - cpu["eagle_pixel_values"]).abs() * 127.5  # in uint8 levels
    assert diff.max() <= 2 + 1e-3 and (diff > 0.5).float().mean() < 0.01


def test_deferred_collate_needs_processor_tile_sized_frames(processor):
    s = {
        "video": np.zeros((1, 1, 40, 40, 3), np.uint8),
        "state": np.zeros((1, 64), np.float32),
        "language": "x",
        "augment": {"top": np.int64(0), "left": np.int64(0), "crop_h": 38, "crop_w": 38, "size": 38},
    }
    with pytest.raises(ValueError, match="tile"):
        Gr00tCollator(processor)([s])
    batch = Gr00tCollator(None)([s, s])  # no processor: raw frames, stacked draws, texts
    assert batch["video"].shape == (2, 1, 1, 40, 40, 3) and batch["augment"]["top"].tolist() == [0, 0]
    assert batch["augment"]["size"] == 38 and batch["language"] == ["x", "x"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_equals_the_cpu_path_up_to_rounding():
    # as in training (trainer.tf32): TF32 matmuls must not reach the colour maps. (cuBLAS's flag is
    # a property of a module object, which monkeypatch cannot restore: set and reset by hand.)
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        _cuda_matches_cpu()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _cuda_matches_cpu() -> None:
    x = _noise(8, 2, 256, 256, seed=6)
    vt = VideoTransform()
    ref = vt.batch(x, torch.Generator().manual_seed(1)).astype(int)
    p = {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in _device_params(vt, 8, 256, 256, 1).items()}
    y = augment_frames(torch.from_numpy(x).cuda(), p)
    out = y.permute(0, 1, 3, 4, 2).to(torch.uint8).cpu().numpy().astype(int)
    diff = np.abs(out - ref)
    # CUDA's antialiased resize rounds its float sums differently from the CPU uint8 kernel:
    # a few levels on a handful of noise pixels, identical elsewhere
    print(f"cuda vs cpu: max {diff.max()}, differing {(diff > 0).mean():.2e}, >2: {(diff > 2).mean():.2e}")
    assert diff.max() <= 4 and (diff > 0).mean() < 0.01 and (diff > 2).mean() < 1e-4
    jitter_only = VideoTransform(crop_scale=1.0, resize=256)
    p = {
        k: (v.cuda() if torch.is_tensor(v) else v)
        for k, v in _device_params(jitter_only, 8, 256, 256, 2).items()
    }
    y = augment_frames(torch.from_numpy(x).cuda(), p).permute(0, 1, 3, 4, 2).to(torch.uint8).cpu().numpy()
    diff = np.abs(y.astype(int) - jitter_only.batch(x, torch.Generator().manual_seed(2)).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # CUDA's float rounding, not TF32's
