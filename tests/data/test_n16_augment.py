"""GR00T N1.6 training-mode image augmentation: random 95 % crop (offsets 0..13 of 256), optional
rotation and colour jitter, one draw per sample for all its views and frames; eval and validation
stay deterministic."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from transformers import Qwen2TokenizerFast

from gr00t_exp.config.compose import compose_config
from gr00t_exp.data.dataset import Gr00tDataset
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.n16.collate import N16Collator
from gr00t_exp.data.n16.datamodule import Gr00tN16DataModule
from gr00t_exp.data.n16.processor_files import processor_files
from gr00t_exp.data.n16.relative_stats import compute_relative_stats
from gr00t_exp.data.stats import compute_stats
from gr00t_exp.data.synthetic import write_synthetic_dataset
from gr00t_exp.embodiment import EmbodimentLayout
from gr00t_exp.model.build import n16_architecture
from gr00t_exp.model.n16.processor import (
    Gr00tN16Processor,
    draw_train_params,
    eval_transform,
    jitter_settings,
    letterbox,
    rotate,
    rotation_setting,
    train_transform,
)
from gr00t_exp.model.processor import ASSETS_DIR

RELEASED_JITTER = {"brightness": 0.3, "contrast": 0.4, "saturation": 0.5, "hue": 0.08}
EDGE, CROP = 256, 243  # int(0.95 * 256)


def _images(seed: int, n: int = 4, shape=(48, 64, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def _square(img: np.ndarray) -> np.ndarray:
    return cv2.resize(letterbox(img), (EDGE, EDGE), interpolation=cv2.INTER_AREA)


def _crop_at(img: np.ndarray, top: int, left: int) -> np.ndarray:
    sq = _square(img)
    return cv2.resize(
        np.ascontiguousarray(sq[top : top + CROP, left : left + CROP]),
        (EDGE, EDGE),
        interpolation=cv2.INTER_AREA,
    )


def test_centre_offset_is_the_eval_transform():
    for shape in [(48, 64, 3), (64, 48, 3), (300, 300, 3), (256, 256, 3)]:
        imgs = _images(1, 2, shape)
        got = train_transform(imgs, params={"top": 6, "left": 6})
        for g, img in zip(got, imgs, strict=True):
            np.testing.assert_array_equal(g, eval_transform(img))


def test_crops_cover_every_offset_and_are_shared_by_views_and_frames():
    imgs = _images(2)  # e.g. 2 views x 2 frames of one sample
    lookup = [
        {
            _crop_at(img, t, c).tobytes(): (t, c)
            for t in range(EDGE - CROP + 1)
            for c in range(EDGE - CROP + 1)
        }
        for img in imgs
    ]
    g = torch.Generator().manual_seed(0)
    seen = []
    for _ in range(300):
        out = train_transform(imgs, generator=g)
        offsets = {lookup[j][o.tobytes()] for j, o in enumerate(out)}  # KeyError: not a 95 % window
        assert len(offsets) == 1  # one crop for every view and frame
        seen.append(offsets.pop())
    tops, lefts = zip(*seen, strict=True)
    assert set(tops) == set(range(14)) and set(lefts) == set(range(14))
    assert out[0].shape == (EDGE, EDGE, 3) and out[0].dtype == np.uint8


def test_seeded_generator_is_deterministic():
    imgs = _images(3, 2)
    a = train_transform(
        imgs, jitter=RELEASED_JITTER, rotation=5.0, generator=torch.Generator().manual_seed(7)
    )
    b = train_transform(
        imgs, jitter=RELEASED_JITTER, rotation=5.0, generator=torch.Generator().manual_seed(7)
    )
    c = train_transform(
        imgs, jitter=RELEASED_JITTER, rotation=5.0, generator=torch.Generator().manual_seed(8)
    )
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))


def test_without_jitter_only_the_crop_is_applied():
    imgs = _images(4, 2)
    assert jitter_settings(None) is None and jitter_settings({"brightness": 0.0}) is None
    g = torch.Generator().manual_seed(1)
    p = draw_train_params(EDGE, CROP, generator=torch.Generator().manual_seed(1))
    assert set(p) == {"top", "left"}
    for o, img in zip(train_transform(imgs, generator=g), imgs, strict=True):
        np.testing.assert_array_equal(o, _crop_at(img, p["top"], p["left"]))


@pytest.mark.parametrize("seed", range(6))
def test_colour_jitter_stays_in_the_configured_ranges(seed):
    base_img = np.full((64, 64, 3), 110, np.uint8)
    base_img[:32] = (140, 100, 80)  # two colours: a contrast and a chroma to act on
    imgs = [base_img, base_img[:, ::-1].copy()]
    g = torch.Generator().manual_seed(seed)
    p = draw_train_params(EDGE, CROP, jitter=RELEASED_JITTER, generator=g)
    j = p["jitter"]
    assert 0.7 <= float(j["brightness"]) <= 1.3 and 0.6 <= float(j["contrast"]) <= 1.4
    assert 0.5 <= float(j["saturation"]) <= 1.5 and -0.08 <= float(j["hue"]) <= 0.08
    crop_only = train_transform(imgs, params={"top": p["top"], "left": p["left"]})
    out = train_transform(imgs, jitter=RELEASED_JITTER, params=p)
    assert not np.array_equal(out[0], crop_only[0])
    # The same colour map for both views (their pixels are mirror images).
    np.testing.assert_array_equal(out[1], out[0][:, ::-1])
    # Brightness alone: a mean ratio within [0.7, 1.3] (mid-grey, no clipping).
    grey = [np.full((64, 64, 3), 100, np.uint8)]
    pb = draw_train_params(
        EDGE, CROP, jitter={"brightness": 0.3}, generator=torch.Generator().manual_seed(seed)
    )
    assert float(pb["jitter"]["contrast"]) == 1.0 and float(pb["jitter"]["hue"]) == 0.0  # unset ranges: 0
    ratio = train_transform(grey, jitter={"brightness": 0.3}, params=pb)[0].mean() / 100.0
    assert 0.7 - 0.01 <= ratio <= 1.3 + 0.01
    assert ratio == pytest.approx(float(pb["jitter"]["brightness"]), abs=0.01)


def test_jitter_statistics_over_many_draws():
    img = np.full((64, 64, 3), 110, np.uint8)
    img[:32] = (140, 100, 80)
    g = torch.Generator().manual_seed(0)
    means, stds = [], []
    for _ in range(60):
        for jitter, stat, out in (({"brightness": 0.3}, np.mean, means), ({"contrast": 0.4}, np.std, stds)):
            p = draw_train_params(EDGE, CROP, jitter=jitter, generator=g)
            crop = train_transform([img], params={"top": p["top"], "left": p["left"]})[0].astype(np.float64)
            o = train_transform([img], jitter=jitter, params=p)[0].astype(np.float64)
            out.append(stat(o) / stat(crop))
    assert 0.69 <= min(means) < 0.85 and 1.15 < max(means) <= 1.31
    assert 0.59 <= min(stds) < 0.8 and 1.2 < max(stds) <= 1.41


def test_rotation_and_its_setting():
    assert rotation_setting(None) is None and rotation_setting(0) is None and rotation_setting(-10) == 10.0
    with pytest.raises(TypeError, match="random_rotation_angle"):
        rotation_setting("ten")
    with pytest.raises(ValueError, match="color_jitter_params: unknown keys"):
        jitter_settings({"gamma": 0.1})
    sq = _images(5, 1, (256, 256, 3))[0]
    np.testing.assert_array_equal(rotate(sq, 90.0), np.rot90(sq, 1))
    np.testing.assert_array_equal(rotate(sq, 0.0), sq)
    g = torch.Generator().manual_seed(0)
    angles = [draw_train_params(EDGE, CROP, rotation=10.0, generator=g)["angle"] for _ in range(200)]
    assert -10 <= min(angles) < -8 and 8 < max(angles) <= 10
    imgs = _images(6, 2)
    p = {"top": 3, "left": 11, "angle": 7.5}
    out = train_transform(imgs, rotation=10.0, params=p)
    for o, img in zip(out, imgs, strict=True):
        np.testing.assert_array_equal(o, rotate(_crop_at(img, 3, 11), 7.5))


# ---------------------------------------------------------------------------------------- data path
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    cfg = compose_config(["experiment=g1_inspire_n16_tiny"])
    root = write_synthetic_dataset(
        tmp_path_factory.mktemp("n16_aug"), cfg.embodiment, episodes=2, min_length=12, max_length=14,
        height=24, width=32,
    )  # fmt: skip
    meta = load_meta(root, cfg.embodiment)
    layout = EmbodimentLayout.from_meta(cfg.embodiment, meta)
    rel = compute_relative_stats(meta, layout, ["left_arm"])
    files = processor_files(
        layout, compute_stats(meta), meta.modality, rel, ["left_arm"], n16_architecture(cfg.model)
    )
    tok = Qwen2TokenizerFast.from_pretrained(str(ASSETS_DIR), local_files_only=True)
    kw = dict(files["processor_config.json"]["processor_kwargs"], color_jitter_params=RELEASED_JITTER)
    proc = Gr00tN16Processor(tok, kw, files["statistics.json"], files["embodiment_id.json"])
    raws = Gr00tDataset(meta, cfg.embodiment, transform=False).samples_at([(0, 0), (0, 3), (1, 5)])
    return proc, layout, raws


def test_collator_training_only_augments(data):
    proc, layout, raws = data
    assert proc.jitter == RELEASED_JITTER and proc.rotation is None
    ev1 = N16Collator(proc, layout)(raws)
    ev2 = N16Collator(proc, layout, training=False)(raws)
    for a, b in zip(ev1["eagle_pixel_values"], ev2["eagle_pixel_values"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    eval_imgs = proc.sample(layout.embodiment_tag, {v: raws[0]["video"][:, j] for j, v in enumerate(layout.keys("video"))}, "x").images  # fmt: skip
    want = [eval_transform(raws[0]["video"][t, j]) for t in range(raws[0]["video"].shape[0]) for j in range(raws[0]["video"].shape[1])]  # fmt: skip
    for a, b in zip(eval_imgs, want, strict=True):
        np.testing.assert_array_equal(a, b)
    tr1 = N16Collator(proc, layout, training=True, generator=torch.Generator().manual_seed(3))(raws)
    tr2 = N16Collator(proc, layout, training=True, generator=torch.Generator().manual_seed(3))(raws)
    for a, b in zip(tr1["eagle_pixel_values"], tr2["eagle_pixel_values"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(tr1["eagle_pixel_values"], ev1["eagle_pixel_values"], strict=True)
    )
    for key in ("eagle_input_ids", "state", "action", "action_mask"):  # only the pixels change
        torch.testing.assert_close(tr1[key], ev1[key], rtol=0, atol=0)


def test_datamodule_augments_the_training_loader_only(tmp_path):
    cfg = compose_config(["experiment=g1_inspire_n16_tiny", f"paths.cache_dir={tmp_path}", "data.synthetic.episodes=3",
                          "data.synthetic.min_length=12", "data.synthetic.max_length=14", "data.cache.enabled=false",
                          "data.batch_size=2"])  # fmt: skip
    dm = Gr00tN16DataModule.from_config(cfg)
    dm.synthetic_dir = tmp_path / "synthetic"
    dm.processor.jitter = dict(RELEASED_JITTER)  # augmentation on: validation must still not see it
    assert dm.train_dataloader().collate_fn.training is True
    val = dm.val_dataloader()
    assert val.collate_fn.training is False
    b1, b2 = next(iter(val)), next(iter(val))
    for a, b in zip(b1["eagle_pixel_values"], b2["eagle_pixel_values"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
