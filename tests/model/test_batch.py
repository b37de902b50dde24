"""to_device: every tensor of a batch moves, also inside lists (N1.6 pixel values) and dicts."""

from __future__ import annotations

import torch

from gr00t_exp.model.batch import to_device


def test_moves_tensors_in_lists_and_dicts_and_keeps_the_rest():
    batch = {
        "state": torch.zeros(2, 3),
        "eagle_pixel_values": [torch.ones(1, 3, 4, 4), torch.ones(1, 3, 4, 4)],
        "augment": {"top": torch.tensor([1, 2]), "crop_h": 7},
        "language": ["pick", "place"],
    }
    out = to_device(batch, torch.device("meta"))
    assert out["state"].device.type == "meta"
    assert [x.device.type for x in out["eagle_pixel_values"]] == ["meta", "meta"]
    assert out["augment"]["top"].device.type == "meta" and out["augment"]["crop_h"] == 7
    assert out["language"] == ["pick", "place"]
    assert batch["state"].device.type == "cpu"  # the input batch is not changed
