"""Video transforms: crop/resize geometry, same crop+jitter for all views/frames, eval determinism."""

from __future__ import annotations

import numpy as np
import torch

from gr00t_exp.data.transforms import VideoTransform


def _frames(b=1, t=2, v=3, h=64, w=64, seed=0):
    g = np.random.default_rng(seed)
    base = g.integers(0, 256, (b, 1, 1, h, w, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.broadcast_to(base, (b, t, v, h, w, 3)))


def test_shapes_and_dtype():
    vt = VideoTransform(resize=32)
    out = vt(_frames()[0], torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 32, 32, 3) and out.dtype == np.uint8
    assert vt.crop_size(256, 256) == (243, 243)


def test_same_crop_and_jitter_for_all_views_and_frames():
    """Identical input views/frames stay identical: one crop and one colour map per sample."""
    vt = VideoTransform(resize=32, training=True)
    out = vt.batch(_frames(b=4), torch.Generator().manual_seed(1))
    for s in range(4):
        ref = out[s, 0, 0]
        for t in range(2):
            for v in range(3):
                np.testing.assert_array_equal(out[s, t, v], ref)
    # ...but different samples get different augmentations
    assert not np.array_equal(out[0, 0, 0], out[1, 0, 0])


def test_eval_is_centre_crop_without_jitter():
    x = _frames(b=1, t=1, v=1, h=40, w=40)
    vt = VideoTransform(crop_scale=0.95, resize=38, training=False)
    a = vt(x[0], torch.Generator().manual_seed(0))
    b = vt(x[0], torch.Generator().manual_seed(99))
    np.testing.assert_array_equal(a, b)
    # 40 -> crop 38 at offset 1, resize 38 -> 38 is the identity: exactly the centre crop
    np.testing.assert_array_equal(a[0, 0], x[0, 0, 0, 1:39, 1:39])


def test_random_crop_offsets_vary_in_training():
    x = _frames(b=1, t=1, v=1, h=40, w=40)
    vt = VideoTransform(
        crop_scale=0.95, resize=38, training=True, brightness=0, contrast=0, saturation=0, hue=0
    )
    outs = {vt(x[0], torch.Generator().manual_seed(s)).tobytes() for s in range(12)}
    assert len(outs) > 1
    for s in range(4):  # every output is some 38x38 crop of the input
        o = vt(x[0], torch.Generator().manual_seed(s))[0, 0]
        assert any(np.array_equal(o, x[0, 0, 0, i : i + 38, j : j + 38]) for i in range(3) for j in range(3))


def test_jitter_brightness_only_scales():
    x = np.full((1, 1, 1, 20, 20, 3), 100, np.uint8)
    vt = VideoTransform(crop_scale=1.0, resize=20, brightness=0.3, contrast=0, saturation=0, hue=0)
    outs = [int(vt.batch(x, torch.Generator().manual_seed(s))[0, 0, 0, 0, 0, 0]) for s in range(20)]
    assert min(outs) >= 70 and max(outs) <= 130 and len(set(outs)) > 3


def test_hue_and_saturation_keep_grey_grey():
    """Grey pixels have no chroma: saturation and hue must leave them unchanged."""
    x = np.full((1, 1, 1, 8, 8, 3), 77, np.uint8)
    vt = VideoTransform(crop_scale=1.0, resize=8, brightness=0, contrast=0, saturation=0.5, hue=0.08)
    out = vt.batch(x, torch.Generator().manual_seed(3))
    assert np.abs(out.astype(int) - 77).max() <= 1


def test_hue_changes_colour_but_not_luma():
    x = np.zeros((1, 1, 1, 4, 4, 3), np.uint8)
    x[..., 0] = 150  # a muted colour: hue rotation stays inside [0, 255] (no clamping)
    x[..., 1] = 100
    x[..., 2] = 80
    vt = VideoTransform(crop_scale=1.0, resize=4, brightness=0, contrast=0, saturation=0, hue=0.08)
    out = vt.batch(x, torch.Generator().manual_seed(5)).astype(float)
    luma = lambda a: a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114  # noqa: E731
    assert not np.array_equal(out, x)
    assert np.abs(luma(out) - luma(x.astype(float))).max() < 1.5
