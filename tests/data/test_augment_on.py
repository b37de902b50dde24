"""data.augment_on: where the training augmentation runs, and what the train loader emits then."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gr00t_exp.config.compose import compose_config
from gr00t_exp.data.datamodule import Gr00tDataModule


def _trainer_on(device: str) -> SimpleNamespace:
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))


@pytest.mark.parametrize(
    ("choice", "trainer", "expected"),
    [
        ("auto", None, "cpu"),  # no trainer (benchmarks, tools): nobody would apply it on a device
        ("auto", "cpu", "cpu"),
        ("auto", "cuda", "gpu"),
        ("gpu", "cpu", "gpu"),  # forced: the LightningModule applies it on the CPU device
        ("cpu", "cuda", "cpu"),
    ],
)
def test_augment_on_resolution(choice, trainer, expected):
    dm = Gr00tDataModule.from_config(compose_config([f"data.augment_on={choice}"]), processor=object())
    dm.trainer = _trainer_on(trainer) if trainer else None
    assert dm.augment_on() == expected


def test_augment_on_rejects_unknown_values():
    dm = Gr00tDataModule.from_config(compose_config(["data.augment_on=tpu"]), processor=object())
    with pytest.raises(ValueError, match="data.augment_on='tpu'"):
        dm.augment_on()


def test_gpu_mode_train_batches_carry_raw_frames_and_val_batches_do_not(tmp_path, synthetic_dataset):
    from gr00t_exp.model.processor import Gr00tProcessor

    cfg = compose_config(
        [
            "data=synthetic",
            "data.kind=lerobot",
            f"+data.sources=[{{path: {synthetic_dataset}, weight: 1.0}}]",
            f"paths.cache_dir={tmp_path}",
            "data.batch_size=3",
            "data.num_workers=0",
            "data.augment_on=gpu",
        ]
    )
    dm = Gr00tDataModule.from_config(cfg, processor=Gr00tProcessor.from_pretrained(None))
    train = next(iter(dm.train_dataloader()))
    assert dm.train_set.defer_video_augment
    # the synthetic dataset's 64x64 frames, as stored (crop and resize happen on the device)
    assert train["video"].shape == (3, 1, 1, 64, 64, 3) and train["video"].dtype == torch.uint8
    assert train["augment"]["size"] == 224 and train["augment"]["top"].shape == (3,)
    assert "eagle_pixel_values" not in train and train["eagle_input_ids"].shape[0] == 3
    val = next(iter(dm.val_dataloader()))  # evaluation: the deterministic CPU path
    assert "augment" not in val and val["eagle_pixel_values"].shape == (3, 3, 224, 224)
