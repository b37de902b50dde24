"""PolicyClient against small in-test ZeroMQ peers (no policy server): requests as sent on the wire,
replies and errors, timeouts, retries and socket recovery."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq
from gr00t_exp_client import PolicyClient, PolicyServerError, PolicyTimeoutError, wire


class FakeServer:
    """A REP socket on a thread: `handler(request) -> reply` (None: never answer that request)."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[dict] = []
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self.port = self._sock.bind_to_random_port("tcp://127.0.0.1")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(20):
                continue
            ident, empty, payload = self._sock.recv_multipart()
            request = wire.decode(payload)
            self.requests.append(request)
            reply = self.handler(request)
            if reply is not None:
                self._sock.send_multipart([ident, empty, wire.encode(reply)])

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close(0)
        self._ctx.term()


def _echo_actions(request: dict):
    if request["endpoint"] == "ping":
        return {"status": "ok"}
    if request["endpoint"] == "get_action":
        obs = request["data"]["observation"]
        return [
            {"action.left_arm": np.full((16, 7), obs["state.left_arm"].sum())},
            {"timing_ms": {"policy": 1.5}},
        ]
    if request["endpoint"] == "get_modality_config":
        return {
            "action": wire.ModalityConfigWire(
                delta_indices=list(range(16)), modality_keys=["action.left_arm"]
            )
        }
    if request["endpoint"] == "reset":
        return {}
    return {"error": f"unknown endpoint {request['endpoint']}", "code": "unknown_endpoint"}


def test_requests_on_the_wire_and_decoded_replies():
    with FakeServer(_echo_actions) as srv, PolicyClient(port=srv.port, api_token="t" * 16) as c:
        assert c.ping()
        state = np.ones((1, 7), np.float32)
        action, info = c.get_action_with_info({"state.left_arm": state}, options={"seed": 3})
        assert action["action.left_arm"].shape == (16, 7) and float(action["action.left_arm"][0, 0]) == 7.0
        assert info["timing_ms"]["policy"] == 1.5 and info["timing_ms"]["round_trip"] > 0
        assert c.get_modality_config() == {
            "action": {"delta_indices": list(range(16)), "modality_keys": ["action.left_arm"]}
        }
        assert c.reset({"episode_index": 2}) == {}
    ping, act, _, reset = srv.requests
    # timeout_ms: the server drops the request unrun once this client stops waiting
    assert ping == {"endpoint": "ping", "api_token": "t" * 16, "timeout_ms": 5000}
    assert act["endpoint"] == "get_action" and act["data"]["options"] == {"seed": 3}
    np.testing.assert_array_equal(act["data"]["observation"]["state.left_arm"], state)
    assert reset["data"] == {"options": {"episode_index": 2}}


def test_no_token_means_no_token_field():
    with FakeServer(_echo_actions) as srv, PolicyClient(port=srv.port) as c:
        assert c.ping()
    assert "api_token" not in srv.requests[0]


def test_error_replies_raise_with_message_and_code():
    with FakeServer(_echo_actions) as srv, PolicyClient(port=srv.port) as c:
        with pytest.raises(PolicyServerError, match="unknown endpoint nope") as info:
            c.call("nope")
        assert info.value.code == "unknown_endpoint"
        assert c.ping()  # the socket is still usable after an error reply


def test_get_action_is_never_retried_and_the_socket_recovers():
    answered = {"n": 0}

    def first_silent(request):
        answered["n"] += 1
        return None if answered["n"] == 1 else _echo_actions(request)

    obs = {"state.left_arm": np.zeros((1, 7))}
    with FakeServer(first_silent) as srv, PolicyClient(port=srv.port, timeout_ms=150, retries=3) as c:
        t0 = time.perf_counter()
        with pytest.raises(PolicyTimeoutError, match="'get_action' within 150 ms"):
            c.get_action(obs)
        assert time.perf_counter() - t0 < 0.6
        assert c.get_action(obs)["action.left_arm"].shape == (16, 7)  # a fresh REQ socket
    assert [r["endpoint"] for r in srv.requests] == ["get_action", "get_action"]


def test_idempotent_calls_are_retried():
    seen = {"n": 0}

    def answer_second(request):
        seen["n"] += 1
        return None if seen["n"] == 1 else {"status": "ok"}

    with FakeServer(answer_second) as srv, PolicyClient(port=srv.port, timeout_ms=150, retries=1) as c:
        assert c.ping()
    assert [r["endpoint"] for r in srv.requests] == ["ping", "ping"]


def test_client_times_out_on_a_dead_endpoint():
    with zmq.Context() as ctx:
        s = ctx.socket(zmq.ROUTER)  # accepts connections, never answers
        port = s.bind_to_random_port("tcp://127.0.0.1")
        with PolicyClient(port=port, timeout_ms=150, retries=1) as c:
            t0 = time.perf_counter()
            assert c.ping() is False
            assert 0.25 < time.perf_counter() - t0 < 2.0  # 2 attempts
            with pytest.raises(PolicyTimeoutError, match="within 150 ms"):
                c.metadata()
        s.close(0)


def test_curve_key_files_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        PolicyClient(port=1, curve_server_key_file=tmp_path / "missing.key")
