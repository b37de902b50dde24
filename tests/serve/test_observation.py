"""Observation validation: both formats, batching, and one precise error per defect."""

from __future__ import annotations

import numpy as np
import pytest

from gr00t_exp.serve.observation import ObservationError, format_action, parse_observation

from .conftest import LANG, flat_obs, nested_obs, small_spec


def test_flat_single_is_batched_internally_and_unbatched_on_output(spec):
    obs = parse_observation(flat_obs(spec), spec)
    assert obs.fmt == "flat" and not obs.batched and obs.batch_size == 1
    assert obs.video["ego_view"].shape == (1, 1, 48, 64, 3)
    assert obs.state["left_arm"].shape == (1, 1, 7) and obs.state["left_arm"].dtype == np.float32
    out = format_action({"left_arm": np.zeros((1, 16, 7))}, obs)
    assert out["action.left_arm"].shape == (16, 7)


def test_flat_batched(spec):
    obs = parse_observation(flat_obs(spec, batch=3), spec)
    assert obs.batched and obs.batch_size == 3 and len(obs.language) == 3
    assert format_action({"left_arm": np.zeros((3, 16, 7))}, obs)["action.left_arm"].shape == (3, 16, 7)


def test_nested(spec):
    obs = parse_observation(nested_obs(spec, batch=2), spec)
    assert obs.fmt == "nested" and obs.batch_size == 2 and obs.language == ["pick up the apple"] * 2
    assert set(format_action({"left_arm": np.zeros((2, 16, 7))}, obs)) == {"left_arm"}


def test_plain_lists_are_accepted(spec):
    obs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in flat_obs(spec).items()}
    parsed = parse_observation(obs, spec)
    assert parsed.video["ego_view"].dtype == np.uint8


def _broken(spec, key, value):
    obs = flat_obs(spec)
    if value is None:
        del obs[key]
    else:
        obs[key] = value
    return obs


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("state.left_arm", None, r"missing observation keys \['state.left_arm'\]"),
        ("video.ego_view", None, r"missing observation keys \['video.ego_view'\]"),
        ("state.left_arm", np.zeros((1, 7), np.int64), "float array"),
        ("state.left_arm", np.zeros((1, 6)), "D=7"),
        ("state.left_arm", np.full((1, 7), np.nan), "NaN or inf"),
        ("state.left_arm", np.full((1, 7), np.inf), "NaN or inf"),
        ("video.ego_view", np.zeros((1, 48, 64, 3), np.float32), "uint8"),
        ("video.ego_view", np.zeros((1, 480, 640, 3), np.uint8), "image size 480x640"),
        ("video.ego_view", np.zeros((1, 48, 64), np.uint8), "expected"),
        ("video.ego_view", "not an array", "expected an array"),
        ("state.extra", np.zeros((1, 3)), "unknown observation keys"),
        (LANG, 5, "list of strings"),
        ("state.left_arm", [["a", "b"]], "cannot convert"),
    ],
)
def test_each_defect_is_named(spec, key, value, match):
    with pytest.raises(ObservationError, match=match):
        parse_observation(_broken(spec, key, value), spec)


def test_unknown_keys_pass_when_not_strict():
    spec = small_spec(strict=False)
    obs = flat_obs(spec)
    obs["state.extra"] = np.zeros((1, 3))
    assert "extra" not in parse_observation(obs, spec).state


def test_nested_requires_float32_state_and_the_declared_language_key(spec):
    obs = nested_obs(spec)
    obs["state"]["left_arm"] = obs["state"]["left_arm"].astype(np.float64)
    with pytest.raises(ObservationError, match="float32"):
        parse_observation(obs, spec)
    obs = nested_obs(spec)
    obs["language"] = {"annotation.human.task_description": [["x"]]}
    with pytest.raises(ObservationError, match=LANG):
        parse_observation(obs, spec)


def test_mixed_batching_is_refused(spec):
    obs = flat_obs(spec, batch=2)
    obs["state.left_arm"] = obs["state.left_arm"][0]
    with pytest.raises(ObservationError, match=r"\(T, D\)"):
        parse_observation(obs, spec)
    obs = flat_obs(spec, batch=2)
    obs["video.ego_view"] = obs["video.ego_view"][:1]
    with pytest.raises(ObservationError, match="batch size"):
        parse_observation(obs, spec)
