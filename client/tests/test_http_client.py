"""HttpPolicyClient against a standard-library HTTP stub (no policy server): json_numpy bodies,
the bearer token, Server-Timing, error replies and unreachable servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from gr00t_exp_client import HttpPolicyClient, PolicyServerError, json_codec


class Stub(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict, object]] = []

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, body, headers: dict | None = None) -> None:
        raw = json_codec.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        Stub.seen.append(("GET", self.path, dict(self.headers), None))
        if self.path == "/health":
            self._reply(200, {"status": "healthy"})
        elif self.path == "/metadata":
            self._reply(200, {"protocol_version": 1})
        else:
            self._reply(404, {"error": f"no route {self.path}", "code": "not_found"})

    def do_POST(self) -> None:
        body = json_codec.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Stub.seen.append(("POST", self.path, dict(self.headers), body))
        if self.headers.get("Authorization") != "Bearer " + "k" * 16:
            self._reply(401, {"error": "Unauthorized: invalid API token", "code": "unauthorized"})
        elif self.path == "/act":
            state = body["observation"]["state.left_arm"]
            action = {"action.left_arm": np.repeat(state[-1:], 16, axis=0).astype(np.float32)}
            self._reply(200, action, {"Server-Timing": "decode;dur=0.5, policy;dur=2.25"})
        elif self.path == "/reset":
            self._reply(200, {})
        else:
            self._reply(404, {"error": "no route"})


@pytest.fixture
def stub():
    Stub.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_get_action_round_trip_with_token_and_timing(stub):
    c = HttpPolicyClient(port=stub, api_token="k" * 16)
    assert c.ping() and c.metadata() == {"protocol_version": 1}
    state = np.arange(7, dtype=np.float64).reshape(1, 7)
    action, info = c.get_action_with_info({"state.left_arm": state, "annotation.task": ["pick"]})
    assert action["action.left_arm"].dtype == np.float32 and action["action.left_arm"].shape == (16, 7)
    np.testing.assert_array_equal(action["action.left_arm"][5], state[0])
    assert info["timing_ms"]["decode"] == 0.5 and info["timing_ms"]["policy"] == 2.25
    assert info["timing_ms"]["round_trip"] > 0
    assert c.reset({"episode_index": 1}) == {}
    method, path, headers, body = Stub.seen[2]
    assert (method, path) == ("POST", "/act") and headers["Authorization"] == "Bearer " + "k" * 16
    np.testing.assert_array_equal(body["observation"]["state.left_arm"], state)  # sent json_numpy-encoded
    assert body["observation"]["annotation.task"] == ["pick"]


def test_error_replies_raise_with_message_and_code(stub):
    with pytest.raises(PolicyServerError, match="Unauthorized") as info:
        HttpPolicyClient(port=stub, api_token="wrong" * 4).get_action({"state.left_arm": np.zeros((1, 7))})
    assert info.value.code == "unauthorized"
    with pytest.raises(PolicyServerError, match="no route /modality_config"):
        HttpPolicyClient(port=stub).get_modality_config()


def test_unreachable_server_pings_false():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert HttpPolicyClient(port=port, timeout_ms=200, retries=0).ping() is False


def test_plain_json_is_what_the_wire_carries(stub):
    """The body is ordinary JSON: a server without json_numpy still parses it."""
    HttpPolicyClient(port=stub, api_token="k" * 16).reset()
    body = Stub.seen[-1][3]
    assert json.loads(json.dumps(body)) == {"options": None}
