"""Gr00tCollator: stacking + processor call with frame-major images."""

from __future__ import annotations

import numpy as np
import torch

from gr00t_exp.data.collate import Gr00tCollator


def _sample(i, t=2, v=3):
    return {
        "video": np.full((t, v, 8, 8, 3), i, np.uint8)
        + np.arange(t * v, dtype=np.uint8).reshape(t, v, 1, 1, 1) * 10,
        "state": np.full((1, 64), i, np.float32),
        "state_mask": np.ones((1, 64), bool),
        "action": np.zeros((16, 32), np.float32),
        "action_mask": np.ones((16, 32), bool),
        "embodiment_id": np.int64(24),
        "language": f"task {i}",
    }


def test_collate_with_stub_processor():
    seen = {}

    def processor(images, texts):
        seen["images"], seen["texts"] = images, texts
        n = sum(len(x) for x in images)
        return {
            "eagle_input_ids": torch.ones(len(texts), 5, dtype=torch.int64),
            "eagle_attention_mask": torch.ones(len(texts), 5, dtype=torch.int64),
            "eagle_pixel_values": torch.zeros(n, 3, 8, 8),
        }

    batch = Gr00tCollator(processor)([_sample(1), _sample(2)])
    assert batch["state"].shape == (2, 1, 64) and batch["state"].dtype == torch.float32
    assert batch["action_mask"].dtype == torch.bool and batch["embodiment_id"].tolist() == [24, 24]
    assert batch["eagle_pixel_values"].shape[0] == 12
    assert seen["texts"] == ["task 1", "task 2"]
    imgs = seen["images"][0]
    assert len(imgs) == 6 and imgs[0].shape == (8, 8, 3)
    # time-major then view: frame k = t * V + v has value 1 + 10 * k
    assert [int(im[0, 0, 0]) for im in imgs] == [1 + 10 * k for k in range(6)]


def test_collate_without_processor_keeps_video():
    batch = Gr00tCollator(None)([_sample(1), _sample(2)])
    assert batch["video"].shape == (2, 2, 3, 8, 8, 3) and batch["language"] == ["task 1", "task 2"]
