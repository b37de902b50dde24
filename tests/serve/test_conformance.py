"""Conformance of both protocol generations, checked with clients written from upstream's
documented wire formats (upstream_client.py), never with this project's own client: request bytes
as upstream's clients build them, replies decoded as each generation's client decodes them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gr00t_exp.serve.base import ConstantPolicy
from gr00t_exp.serve.http_server import HttpPolicyServer
from gr00t_exp.serve.replay import ReplayPolicy
from gr00t_exp.serve.zmq_server import ZmqPolicyServer

from .conftest import flat_obs, nested_obs, small_spec
from .upstream_client import (
    ActionRepresentation,
    N15ModalityConfig,
    N16ModalityConfig,
    UpstreamHttpClient,
    UpstreamStyleClient,
    encode_request,
)

SPEC = small_spec(relative_actions={"left_arm": "left_arm"})


@pytest.fixture(params=["n1.5", "n1.6"])
def served(request):
    """(generation, ZeroMQ server port) for a constant policy speaking that generation."""
    policy = ConstantPolicy(SPEC, value=0.25)
    with ZmqPolicyServer(policy, port=0, protocol=request.param) as srv:
        yield request.param, srv.port


def test_both_generations_send_identical_modality_config_requests():
    # So the server cannot tell them apart: the generation has to be configured.
    assert (
        encode_request("get_modality_config", requires_input=False)
        == b"\x81\xa8endpoint\xb3get_modality_config"
    )


def test_each_generations_client_decodes_its_server(served):
    generation, port = served
    c = UpstreamStyleClient(port, generation=generation)
    try:
        assert c.ping() == {"status": "ok", "message": "Server is running"}
        mc = c.get_modality_config()
        assert set(mc) == {"video", "state", "action", "language"}
        if generation == "n1.5":
            assert all(isinstance(v, N15ModalityConfig) for v in mc.values())
            assert mc["video"].modality_keys == ["video.ego_view", "video.wrist_view"]
            assert mc["action"].modality_keys[0] == "action.left_arm"
        else:
            assert all(isinstance(v, N16ModalityConfig) for v in mc.values())
            assert mc["video"].modality_keys == ["ego_view", "wrist_view"]
            assert mc["state"].modality_keys == list(SPEC.state)
            reps = [a.rep for a in mc["action"].action_configs]
            assert reps[0] is ActionRepresentation.RELATIVE and reps[1] is ActionRepresentation.ABSOLUTE
            assert mc["action"].action_configs[0].state_key == "left_arm"
        assert mc["action"].delta_indices == list(range(16))
        assert mc["language"].modality_keys == [SPEC.language_key]
        with pytest.raises(RuntimeError, match="kill is disabled"):
            c.call_endpoint("kill", requires_input=False)
        meta = c.call_endpoint("metadata", requires_input=False)
        assert meta["protocol_generation"] == generation
        assert meta["model_card"]["protocol_generation"] == generation
    finally:
        c.close()


def test_the_other_generations_client_cannot_decode_it(served):
    # What an unconfigured server would do to the other generation's robots.
    generation, port = served
    other = "n1.6" if generation == "n1.5" else "n1.5"
    c = UpstreamStyleClient(port, generation=other)
    try:
        with pytest.raises(TypeError):
            c.get_modality_config()
    finally:
        c.close()


def test_get_action_and_reset_in_each_call_style(served):
    generation, port = served
    c = UpstreamStyleClient(port, generation=generation)
    try:
        # N1.5 RobotInferenceClient: flat observation -> action dict, 1-D time axis unbatched
        action = c.get_action(flat_obs(SPEC))
        assert set(action) == {f"action.{k}" for k in SPEC.action}
        assert action["action.left_arm"].shape == (16, 7) and action["action.left_arm"].dtype == np.float32
        assert c.get_action(flat_obs(SPEC, batch=2))["action.right_hand"].shape == (2, 16, 6)
        # N1.6 PolicyClient: {"observation", "options"} -> (action, info)
        action, info = c.get_action_n16(nested_obs(SPEC, batch=3), options=None)
        assert set(action) == set(SPEC.action) and action["left_hand"].shape == (3, 16, 6)
        assert action["left_arm"].dtype == np.float32 and "timing_ms" in info
        assert c.reset_n16({"whatever": 1}) == {}
    finally:
        c.close()


def test_eval_policy_sends_the_step_with_its_action_keys(served):
    """Upstream N1.5 eval_policy.py client mode sends the dataset step, action.* included."""
    _, port = served
    c = UpstreamStyleClient(port)
    try:
        step = flat_obs(SPEC)
        step.update({f"action.{k}": np.zeros((16, d)) for k, d in SPEC.action.items()})
        assert c.get_action(step)["action.left_arm"].shape == (16, 7)
        step["state.not_a_key"] = np.zeros((1, 3))
        with pytest.raises(RuntimeError, match="unknown observation keys"):
            c.get_action(step)  # other unknown keys stay errors under strict
    finally:
        c.close()


@pytest.mark.parametrize("generation", ["n1.5", "n1.6"])
def test_upstream_http_client(generation):
    policy = ConstantPolicy(SPEC, value=0.5)
    with HttpPolicyServer(policy, port=0, protocol=generation) as srv:
        c = UpstreamHttpClient(srv.port)
        assert c.health() == {"status": "healthy", "model": "GR00T"}
        for encoded in (False, True):
            action = c.get_action(flat_obs(SPEC), encoded=encoded)
            assert action["action.left_arm"].shape == (16, 7)
            np.testing.assert_allclose(action["action.right_arm"], 0.5)
        status, body = c.request("GET", "/modality_config")
        keys = json.loads(body)["video"]["modality_keys"]
        assert status == 200 and keys == (["video.ego_view", "video.wrist_view"] if generation == "n1.5"
                                          else ["ego_view", "wrist_view"])  # fmt: skip


def test_replay_speaks_n16_replay_semantics(picknplace):
    policy = ReplayPolicy(picknplace, action_keys=["left_arm"], execution_horizon=8)
    expected = policy.layout.read_columns(2, ["action"])["action"][:, 0:7]
    obs = {
        "video": {"ego_view": np.zeros((1, 1, 256, 256, 3), np.uint8)},
        "state": {k: np.zeros((1, 1, d), np.float32) for k, d in policy.spec.state.items()},
        "language": {policy.spec.language_key: [["pick the pear"]]},
    }
    with ZmqPolicyServer(policy, port=0) as srv:  # protocol=auto: a replay speaks N1.6
        c = UpstreamStyleClient(srv.port, generation="n1.6")
        try:
            assert isinstance(c.get_modality_config()["action"], N16ModalityConfig)
            info = c.reset_n16({"episode_index": 2, "step_index": 5})
            assert info["episode_index"] == 2 and info["current_step"] == 5
            assert info["episode_length"] == len(expected)
            action, info = c.get_action_n16(obs)
            np.testing.assert_allclose(action["left_arm"][0], expected[5:21], rtol=1e-6)
            assert (info["current_step"], info["episode_index"]) == (5, 2)
            assert info["episode_length"] == len(expected)
            _, info = c.get_action_n16(obs)
            assert info["current_step"] == 13  # advanced by execution_horizon
            assert c.reset_n16(None)["current_step"] == 0  # the episode stays, the step restarts
        finally:
            c.close()
