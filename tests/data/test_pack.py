"""GR00T packing: order, padding, masks, embodiment ids."""

from __future__ import annotations

import numpy as np
import pytest

from gr00t_exp.data.transforms import pack_sample
from gr00t_exp.embodiment import projector_table


def test_pack_order_padding_masks():
    video = np.zeros((1, 1, 8, 8, 3), np.uint8)
    state = {"state.b": np.full((1, 2), 2.0), "state.a": np.full((1, 3), 1.0)}
    action = {"action.x": np.arange(16 * 4, dtype=np.float64).reshape(16, 4)}
    s = pack_sample(
        video, state, action, "do it", ["state.a", "state.b"], ["action.x"], "gr1", action_horizon=16
    )
    assert s["state"].shape == (1, 64) and s["state"].dtype == np.float32
    np.testing.assert_array_equal(s["state"][0, :6], [1, 1, 1, 2, 2, 0])
    assert s["state_mask"].dtype == bool and s["state_mask"].sum() == 5 and s["state_mask"][0, :5].all()
    assert (
        s["action"].shape == (16, 32) and s["action_mask"][:, :4].all() and not s["action_mask"][:, 4:].any()
    )
    np.testing.assert_array_equal(s["action"][:, :4], action["action.x"])
    assert s["embodiment_id"] == 24 and s["embodiment_id"].dtype == np.int64 and s["language"] == "do it"


def test_ids_and_errors():
    assert dict(projector_table("gr00t_n15")) == {
        "gr1": 24,
        "oxe_droid": 17,
        "agibot_genie1": 26,
        "new_embodiment": 31,
    }
    v = np.zeros((1, 1, 2, 2, 3), np.uint8)
    n16 = pack_sample(v, {"s": np.zeros((1, 1))}, None, "", ["s"], [], "gr1", model_family="gr00t_n16")
    assert n16["embodiment_id"] == 20  # the N1.6 table, chosen by the model family
    with pytest.raises(ValueError, match="embodiment_tag='unitree_g1'"):
        pack_sample(v, {"s": np.zeros((1, 1))}, None, "", ["s"], [], "unitree_g1")
    with pytest.raises(ValueError, match="max_action_dim"):
        pack_sample(v, {"s": np.zeros((1, 1))}, {"a": np.zeros((16, 33))}, "", ["s"], ["a"], "gr1")
    with pytest.raises(KeyError, match="missing key"):
        pack_sample(v, {"s": np.zeros((1, 1))}, None, "", ["s", "t"], [], "gr1")
