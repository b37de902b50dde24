"""The LightningModule applies a batch's deferred video augmentation (data.augment_on=gpu) after the
host-to-device copy; a run trained that way matches the CPU-augmented run up to pixel rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gr00t_exp.data.transforms import VideoTransform
from gr00t_exp.train.config import OptimConfig
from gr00t_exp.train.module import Gr00tLitModule
from gr00t_exp.train.run import run
from tests.train.test_train import losses


def test_after_batch_transfer_turns_raw_frames_into_pixel_values():
    lit = Gr00tLitModule(nn.Linear(2, 2), OptimConfig(), total_steps=1)
    vt = VideoTransform(resize=16)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 1, 2, 20, 20, 3), dtype=np.uint8))
    p = vt.sample_params(2, 20, 20, torch.Generator().manual_seed(0))
    aug = {
        **p,
        "crop_h": 19,
        "crop_w": 19,
        "size": 16,
        "mean": torch.full((3,), 127.5),
        "std": torch.full((3,), 127.5),
    }
    out = lit.on_after_batch_transfer({"video": x, "augment": aug, "action": torch.zeros(2, 16, 32)}, 0)
    assert set(out) == {"eagle_pixel_values", "action"} and out["eagle_pixel_values"].shape == (4, 3, 16, 16)
    assert out["eagle_pixel_values"].abs().max() <= 1.0
    ready = {"eagle_pixel_values": torch.zeros(1, 3, 4, 4)}
    assert lit.on_after_batch_transfer(ready, 0) is ready  # CPU-processed batches pass unchanged
    assert not any(k.startswith("batch_augment") for k in lit.state_dict())  # nothing in checkpoints


def test_gpu_augment_run_matches_the_cpu_augment_run(make_cfg, tmp_path):
    """Same seed, same draws: the losses of a deferred-augmentation run (applied by the module, here
    on the CPU device) equal the CPU-augmented run's up to the resize's rounding."""
    ref, dev = tmp_path / "cpu", tmp_path / "gpu"
    assert isinstance(run(make_cfg(2, ["data.augment_on=cpu"], out=ref)), float)
    assert isinstance(run(make_cfg(2, ["data.augment_on=gpu"], out=dev)), float)
    a, b = losses(ref), losses(dev)
    assert len(a) == len(b) == 2 and a[0] != a[1]
    assert b == pytest.approx(a, rel=1e-3, abs=1e-4)


def test_before_batch_transfer_marks_one_embodiment_batches_only():
    from gr00t_exp.model.embodiment_mlp import UNIFORM_EMBODIMENT_KEY

    lit = Gr00tLitModule(nn.Linear(2, 2), OptimConfig(), total_steps=1)
    same = lit.on_before_batch_transfer({"embodiment_id": torch.tensor([3, 3])}, 0)
    mixed = lit.on_before_batch_transfer({"embodiment_id": torch.tensor([3, 1])}, 0)
    assert same[UNIFORM_EMBODIMENT_KEY] == 3 and UNIFORM_EMBODIMENT_KEY not in mixed
    assert not lit._graphed_steps
    graphed = Gr00tLitModule(
        nn.Linear(2, 2), OptimConfig(), total_steps=1, compile={"mode": "reduce-overhead"}
    )
    assert graphed._graphed_steps  # marks each step and logs a copy of the loss
