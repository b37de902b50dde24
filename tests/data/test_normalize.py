"""Normalisation: modes as upstream, exact inverses (property-based), per-key dicts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from omegaconf import OmegaConf

from gr00t_exp.data.config import EmbodimentConfig
from gr00t_exp.data.transforms import StateActionNormalizer, normalize, unnormalize

FLOATS = st.floats(-1e3, 1e3, allow_nan=False, width=64)


def _stats(draw_lo, draw_span):
    lo = np.asarray(draw_lo)
    hi = lo + np.asarray(draw_span)
    return {
        "min": lo,
        "max": hi,
        "q01": lo,
        "q99": hi,
        "mean": (lo + hi) / 2,
        "std": np.asarray(draw_span) / 3,
    }


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(np.float64, (5, 3), elements=FLOATS),
    lo=arrays(np.float64, (3,), elements=FLOATS),
    span=arrays(np.float64, (3,), elements=st.floats(1e-2, 1e3)),
)
def test_min_max_and_mean_std_round_trip(x, lo, span):
    s = _stats(lo, span)
    for mode in ("min_max", "mean_std"):
        np.testing.assert_allclose(unnormalize(normalize(x, mode, s), mode, s), x, rtol=1e-9, atol=1e-7)


@settings(max_examples=60, deadline=None)
@given(
    u=arrays(np.float64, (4, 3), elements=st.floats(0, 1)),
    lo=arrays(np.float64, (3,), elements=FLOATS),
    span=arrays(np.float64, (3,), elements=st.floats(1e-2, 1e3)),
)
def test_q99_round_trip_inside_range_and_clips_outside(u, lo, span):
    s = _stats(lo, span)
    x = lo + u * span
    y = normalize(x, "q99", s)
    assert np.all(np.abs(y) <= 1)
    np.testing.assert_allclose(unnormalize(y, "q99", s), x, rtol=1e-9, atol=1e-7)
    far = normalize(lo + 3 * span, "q99", s)
    np.testing.assert_array_equal(far, np.ones(3))


@settings(max_examples=40, deadline=None)
@given(x=arrays(np.float64, (6, 4), elements=st.floats(-3.1, 3.1)))
def test_sin_cos_round_trip(x):
    y = normalize(x, "sin_cos", None)
    assert y.shape == (6, 8)
    np.testing.assert_allclose(unnormalize(y, "sin_cos", None), x, atol=1e-9)


def test_binary_and_degenerate_dims():
    x = np.array([[0.2, 0.5, 0.51, 1.0]])
    np.testing.assert_array_equal(normalize(x, "binary", None), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(unnormalize(normalize(x, "binary", None), "binary", None), [[0, 0, 1, 1]])
    s = {
        "min": [1.0, 0.0],
        "max": [1.0, 2.0],
        "q01": [1.0, 0.0],
        "q99": [1.0, 2.0],
        "mean": [0, 0],
        "std": [0, 1],
    }
    x = np.array([[1.0, 1.0]])
    np.testing.assert_array_equal(normalize(x, "min_max", s), [[0.0, 0.0]])
    np.testing.assert_array_equal(unnormalize([[0.0, 0.0]], "min_max", s), [[1.0, 1.0]])
    np.testing.assert_array_equal(normalize(x, "q99", s), [[1.0, 0.0]])  # q01 == q99: raw value kept
    np.testing.assert_array_equal(normalize(x, "mean_std", s), [[1.0, 1.0]])  # std == 0: raw value kept
    # min_max is not clipped (upstream)
    assert normalize(np.array([[1.0, 4.0]]), "min_max", s)[0, 1] == 3.0


def _embodiment(**kw):
    base = dict(
        name="t",
        state_keys=["state.a", "state.b"],
        action_keys=["action.a", "action.g"],
        state_normalization={"state.a": "sin_cos", "state.b": "q99"},
        action_normalization={"action.a": "min_max", "action.g": "binary"},
    )
    base.update(kw)
    return OmegaConf.merge(OmegaConf.structured(EmbodimentConfig), base)


def test_normalizer_dicts_and_unnormalize_action_array():
    stats = {
        "state": {"a": {"min": [-1] * 3, "max": [1] * 3}, "b": {"q01": [0, 0], "q99": [2, 4]}},
        "action": {"a": {"min": [0, -2, 5], "max": [1, 2, 6]}, "g": {"min": [0], "max": [1]}},
    }
    n = StateActionNormalizer(_embodiment(), stats)
    s = n.normalize_state({"state.a": np.zeros((1, 3)), "state.b": np.array([[1.0, 1.0]])})
    assert s["state.a"].shape == (1, 6) and s["state.a"].dtype == np.float32
    np.testing.assert_allclose(s["state.b"], [[0.0, -0.5]])
    rng = np.random.default_rng(0)
    raw = {
        "action.a": rng.uniform([0, -2, 5], [1, 2, 6], (16, 3)),
        "action.g": (rng.random((16, 1)) > 0.5) * 1.0,
    }
    norm = n.normalize_action(raw)
    packed = np.concatenate([norm["action.a"], norm["action.g"], np.zeros((16, 28))], -1)
    for arr in (packed, np.stack([packed, packed])):
        back = n.unnormalize_action(arr)
        assert set(back) == {"action.a", "action.g"}
        np.testing.assert_allclose(
            back["action.a"][..., :, :], np.broadcast_to(raw["action.a"], back["action.a"].shape), atol=1e-6
        )
        np.testing.assert_array_equal(
            back["action.g"], np.broadcast_to(raw["action.g"], back["action.g"].shape)
        )


def test_normalizer_errors_name_the_key():
    with pytest.raises(ValueError, match=r"action.a uses min_max but the statistics have no entry"):
        StateActionNormalizer(_embodiment(), {"state": {"b": {"q01": [0], "q99": [1]}}, "action": {}})
    with pytest.raises(ValueError, match=r"state_normalization.state.a = 'minmax' is unknown"):
        StateActionNormalizer(
            _embodiment(state_normalization={"state.a": "minmax"}), {"state": {}, "action": {}}
        )


def test_normalizer_target_rotation(tmp_path):
    from gr00t_exp.data.modality import parse_modality

    mod = parse_modality(
        {
            "state": {"q": {"start": 0, "end": 4, "rotation_type": "quaternion"}},
            "action": {"q": {"start": 0, "end": 4, "rotation_type": "quaternion"}},
        }
    )
    emb = _embodiment(
        state_keys=["state.q"],
        action_keys=["action.q"],
        state_normalization={},
        action_normalization={},
        state_target_rotations={"state.q": "rotation_6d"},
        action_target_rotations={"action.q": "axis_angle"},
    )
    n = StateActionNormalizer(emb, {"state": {}, "action": {}}, mod)
    q = np.array([[np.cos(0.3), np.sin(0.3), 0, 0]])
    s = n.normalize_state({"state.q": q})["state.q"]
    assert s.shape == (1, 6) and np.all(np.abs(s) <= 1)
    a = n.normalize_action({"action.q": q})["action.q"]
    assert a.shape == (1, 3)
    np.testing.assert_allclose(a[0, 0], 0.6 / np.pi, rtol=1e-6)  # angle 0.6 about x, bound pi
    np.testing.assert_allclose(n.unnormalize_action(a)["action.q"], q, atol=1e-6)
