"""HTTP server: upstream's json_numpy requests, plain lists, health, metadata, tokens, size limits."""

from __future__ import annotations

import base64
import threading
import time

import httpx
import numpy as np
import pytest

from gr00t_exp.serve.http_server import HttpPolicyServer
from gr00t_exp.serve.replay import ReplayPolicy
from gr00t_exp.serve.security import InsecureBindError

from .conftest import SlowPolicy, flat_obs, nested_obs

TOKEN = "http-token-" + "z" * 16


def np_json(a: np.ndarray) -> dict:
    """json_numpy's array encoding, written from its documented format."""
    a = np.ascontiguousarray(a)
    return {"__numpy__": base64.b64encode(a.tobytes()).decode(), "dtype": a.dtype.str, "shape": list(a.shape)}


def from_json(v):
    if isinstance(v, dict) and "__numpy__" in v:
        return np.frombuffer(base64.b64decode(v["__numpy__"]), np.dtype(v["dtype"])).reshape(v["shape"])
    return v


def encode_obs(obs: dict) -> dict:
    return {k: (np_json(v) if isinstance(v, np.ndarray) else v) for k, v in obs.items()}


@pytest.fixture
def http(const_policy):
    with (
        HttpPolicyServer(const_policy, port=0, protocol="n1.5") as srv,
        httpx.Client(base_url=f"http://127.0.0.1:{srv.port}", timeout=10) as c,
    ):
        yield c


def test_act_with_json_numpy(http, spec):
    r = http.post("/act", json={"observation": encode_obs(flat_obs(spec))})
    assert r.status_code == 200, r.text
    action = {k: from_json(v) for k, v in r.json().items()}
    assert action["action.left_arm"].shape == (16, 7) and action["action.left_arm"].dtype == np.float32
    np.testing.assert_allclose(action["action.right_hand"], 0.5)
    stages = dict(p.split(";dur=") for p in r.headers["server-timing"].split(", "))
    assert {"decode", "validate", "policy", "encode"} <= set(stages)


def test_act_with_plain_lists_and_encoded_string(http, spec):
    obs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in flat_obs(spec, batch=2).items()}
    r = http.post("/act?format=list", json={"observation": obs})
    assert r.status_code == 200, r.text
    assert np.asarray(r.json()["action.left_hand"]).shape == (2, 16, 6)
    import json

    # upstream's form: the JSON text of the whole payload, whose "observation" is read
    text = json.dumps({"observation": encode_obs(flat_obs(spec)), "return_lists": True})
    r = http.post("/act", json={"encoded": text})
    assert r.status_code == 200, r.text
    assert np.asarray(r.json()["action.left_arm"]).shape == (16, 7)
    r = http.post("/act", json={"encoded": json.dumps(encode_obs(flat_obs(spec)))})
    assert r.status_code == 400 and "'observation'" in r.json()["error"]


def test_act_nested(http, spec):
    obs = nested_obs(spec)
    payload = {
        g: {k: (np_json(v) if isinstance(v, np.ndarray) else v) for k, v in d.items()} for g, d in obs.items()
    }
    r = http.post("/act", json={"observation": payload})
    assert r.status_code == 200, r.text
    assert from_json(r.json()["left_arm"]).shape == (1, 16, 7)


def test_health_metadata_and_errors(http, spec):
    assert http.get("/health").json() == {"status": "healthy", "model": "GR00T"}
    md = http.get("/metadata").json()
    assert md["transport"] == "http" and md["model_card"]["action"]["left_arm"] == 7
    assert "POST /act" in md["endpoints"] and md["kill_enabled"] is False
    assert http.get("/modality_config").json()["state"]["modality_keys"][0] == "state.left_arm"
    r = http.post("/act", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    obs = flat_obs(spec)
    obs["video.ego_view"] = np.zeros((1, 10, 10, 3), np.uint8)
    r = http.post("/act", json={"observation": encode_obs(obs)})
    assert r.status_code == 400 and "image size 10x10" in r.json()["error"]
    r = http.post(
        "/act", json={"observation": {"state.left_arm": {"__numpy__": "AAAA", "dtype": "|O", "shape": [1]}}}
    )
    assert r.status_code == 400 and "not allowed" in r.json()["error"]
    assert http.get("/health").status_code == 200


def test_size_limit(const_policy, spec):
    with HttpPolicyServer(const_policy, port=0, max_message_bytes=10_000) as srv:
        r = httpx.post(f"http://127.0.0.1:{srv.port}/act", json={"observation": encode_obs(flat_obs(spec))})
        assert r.status_code == 413
        assert httpx.get(f"http://127.0.0.1:{srv.port}/health").status_code == 200


def test_token_rules(const_policy, spec):
    with pytest.raises(InsecureBindError):
        HttpPolicyServer(const_policy, host="0.0.0.0", port=0)
    with HttpPolicyServer(const_policy, host="0.0.0.0", port=0, api_token=TOKEN) as srv:
        url = f"http://127.0.0.1:{srv.port}"
        body = {"observation": encode_obs(flat_obs(spec))}
        assert httpx.post(url + "/act", json=body).status_code == 401
        assert (
            httpx.post(url + "/act", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        assert httpx.get(url + "/metadata").status_code == 401
        assert httpx.get(url + "/health").status_code == 200
        assert (
            httpx.post(url + "/act", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
            == 200
        )
        # the token travels in a header only (checked before the body is read)
        assert httpx.post(url + "/act", json={**body, "api_token": TOKEN}).status_code == 401
        assert (
            httpx.get(url + "/metadata", headers={"X-API-Token": TOKEN}).json()["auth"]["api_token"] is True
        )


def test_health_answers_during_an_action(spec):
    policy = SlowPolicy(spec, delay_s=1.0)
    with HttpPolicyServer(policy, port=0) as srv:
        url = f"http://127.0.0.1:{srv.port}"
        t = threading.Thread(
            target=lambda: httpx.post(
                url + "/act", json={"observation": encode_obs(flat_obs(spec))}, timeout=10
            )
        )
        t.start()
        assert policy.started.wait(5)
        t0 = time.perf_counter()
        assert httpx.get(url + "/health").status_code == 200
        assert time.perf_counter() - t0 < 0.5
        t.join(10)


def test_replay_over_http(picknplace):
    policy = ReplayPolicy(
        picknplace, state_keys=["left_arm"], action_keys=["left_arm"], video_keys=["ego_view"]
    )
    expected = policy.layout.read_columns(2, ["action"])["action"][:16, :7]
    obs = {
        "video.ego_view": np_json(np.zeros((1, 256, 256, 3), np.uint8)),
        "state.left_arm": [[0.0] * 7],
        "annotation.human.action.task_description": ["pick"],
    }
    with HttpPolicyServer(policy, port=0) as srv:
        url = f"http://127.0.0.1:{srv.port}"
        assert httpx.post(url + "/reset", json={"options": {"episode_index": 2}}).json()["episode_index"] == 2
        r = httpx.post(url + "/act", json={"observation": obs})
        np.testing.assert_allclose(from_json(r.json()["action.left_arm"]), expected, rtol=1e-6)


def test_client_disconnecting_mid_request_leaves_the_server_healthy(spec):
    import socket

    policy = SlowPolicy(spec, delay_s=0.3)
    with HttpPolicyServer(policy, port=0) as srv:
        # half a body, then hang up
        with socket.create_connection(("127.0.0.1", srv.port)) as raw:
            raw.sendall(b"POST /act HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100000\r\n\r\n{\"observation\": {")  # fmt: skip
        # a full request whose client gives up while the policy computes
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"http://127.0.0.1:{srv.port}/act",
                json={"observation": encode_obs(flat_obs(spec))},
                timeout=0.1,
            )
        time.sleep(0.4)
        policy.delay_s = 0.0
        r = httpx.post(f"http://127.0.0.1:{srv.port}/act", json={"observation": encode_obs(flat_obs(spec))})
        assert r.status_code == 200 and httpx.get(f"http://127.0.0.1:{srv.port}/health").status_code == 200


def test_http_client_has_the_policy_methods(const_policy, spec):
    from gr00t_exp_client import PolicyServerError
    from gr00t_exp_client.http_client import HttpPolicyClient

    with HttpPolicyServer(const_policy, host="0.0.0.0", port=0, api_token=TOKEN) as srv:
        c = HttpPolicyClient(port=srv.port, api_token=TOKEN)
        assert c.ping() and c.metadata()["model_card"]["action_horizon"] == 16
        a, info = c.get_action_with_info(flat_obs(spec, batch=2))
        assert a["action.left_arm"].shape == (2, 16, 7) and info["timing_ms"]["round_trip"] > 0
        assert "policy" in info["timing_ms"]
        assert c.get_modality_config()["action"]["modality_keys"][0] == "left_arm"  # constant: n1.6
        assert c.reset() == {}
        with pytest.raises(PolicyServerError, match="Unauthorized"):
            HttpPolicyClient(port=srv.port, api_token="w" * 20).get_action(flat_obs(spec))
    assert HttpPolicyClient(port=srv.port, timeout_ms=200, retries=0).ping() is False
