"""The ZeroMQ server against a client written from upstream's wire format, and our client."""

from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import pytest
import zmq
from gr00t_exp_client import PolicyClient, PolicyServerError, PolicyTimeoutError

from gr00t_exp.serve.replay import ReplayPolicy
from gr00t_exp.serve.security import InsecureBindError
from gr00t_exp.serve.service import PROTOCOL_VERSION
from gr00t_exp.serve.zmq_server import ZmqPolicyServer

from .conftest import SlowPolicy, flat_obs, nested_obs
from .upstream_client import UpstreamStyleClient

TOKEN = "t0ken-" + "a" * 20


@pytest.fixture
def server(const_policy):
    with ZmqPolicyServer(const_policy, port=0, protocol="n1.5") as srv:
        yield srv


@pytest.fixture
def upstream(server):
    c = UpstreamStyleClient(server.port)
    yield c
    c.close()


def test_upstream_n15_client(upstream, spec):
    assert upstream.ping() == {"status": "ok", "message": "Server is running"}
    action = upstream.get_action(flat_obs(spec))
    assert set(action) == {f"action.{k}" for k in spec.action}
    assert action["action.left_arm"].shape == (16, 7) and action["action.left_arm"].dtype == np.float32
    np.testing.assert_allclose(action["action.right_hand"], 0.5)
    batched = upstream.get_action(flat_obs(spec, batch=3))
    assert batched["action.left_hand"].shape == (3, 16, 6)
    mc = upstream.get_modality_config()
    assert mc["video"].modality_keys == ["video.ego_view", "video.wrist_view"]
    assert mc["action"].delta_indices == list(range(16))


def test_upstream_n16_client(upstream, spec):
    action, info = upstream.get_action_n16(nested_obs(spec, batch=2))
    assert set(action) == set(spec.action) and action["left_arm"].shape == (2, 16, 7)
    timing = info["timing_ms"]
    for stage in ("decode", "validate", "postprocess", "encode", "server"):
        assert timing[stage] >= 0
    # N1.6 call style with flat observations returns flat keys
    action, _ = upstream.get_action_n16(flat_obs(spec))
    assert action["action.left_arm"].shape == (16, 7)
    assert upstream.reset_n16({"anything": 1}) == {}


def test_errors_are_replies_and_the_server_keeps_serving(upstream, server, spec):
    with pytest.raises(RuntimeError, match="missing observation keys"):
        upstream.get_action({"state.left_arm": np.zeros((1, 7))})
    with pytest.raises(RuntimeError, match="unknown endpoint") as e:
        upstream.call_endpoint("no_such_endpoint")
    assert "no_such_endpoint" not in str(e.value)  # the request is never echoed
    reply = upstream.send_raw(msgpack.packb({"endpoint": ["get", "action"]}))
    assert reply["code"] == "bad_request" and "must be a string" in reply["error"]
    reply = upstream.send_raw(b"\xc1 not msgpack")
    assert "cannot decode request" in reply["error"] and reply["code"] == "bad_request"
    reply = upstream.send_raw(msgpack.packb([1, 2, 3]))
    assert "must be a map" in reply["error"]
    assert upstream.ping()["status"] == "ok" and server.running


def test_kill_is_disabled_by_default(upstream, server):
    with pytest.raises(RuntimeError, match="kill is disabled"):
        upstream.call_endpoint("kill", requires_input=False)
    assert server.running and upstream.ping()["status"] == "ok"


def test_kill_when_enabled_stops_the_server(const_policy):
    srv = ZmqPolicyServer(const_policy, port=0, enable_kill=True).start()
    with PolicyClient(port=srv.port, timeout_ms=2000) as c:
        assert c.kill()["status"] == "ok"
    deadline = time.monotonic() + 5
    while srv.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not srv.running
    srv.stop()


def test_metadata_handshake(server, spec):
    with PolicyClient(port=server.port) as c:
        md = c.metadata()
    assert md["protocol_version"] == PROTOCOL_VERSION and md["wire"] == "msgpack+npy"
    card = md["model_card"]
    assert card["action"] == spec.action and card["action_horizon"] == 16
    assert card["embodiment_tag"] == "new_embodiment" and card["video"]["ego_view"] == [48, 64]
    assert md["kill_enabled"] is False and md["auth"] == {"api_token": False, "curve": False}


def test_our_client_has_the_policy_methods(server, const_policy, spec):
    obs = flat_obs(spec)
    with PolicyClient(port=server.port) as c:
        assert c.ping()
        remote = c.get_action(obs)
        local = const_policy.get_action(obs)
        assert remote.keys() == local.keys()
        for k in local:
            np.testing.assert_array_equal(remote[k], local[k])
        _, info = c.get_action_with_info(obs)
        assert info["timing_ms"]["round_trip"] >= info["timing_ms"]["server"] > 0
        assert c.get_modality_config() == {
            k: v.as_dict() for k, v in const_policy.get_modality_config().items()
        }
        assert c.reset() == {}
        with pytest.raises(PolicyServerError, match="NaN") as e:
            bad = dict(obs)
            bad["state.left_arm"] = np.full((1, 7), np.nan)
            c.get_action(bad)
        assert e.value.code == "bad_request"


def test_ping_answers_while_an_action_is_computed(spec):
    policy = SlowPolicy(spec, delay_s=1.5)
    with ZmqPolicyServer(policy, port=0) as srv:
        slow = PolicyClient(port=srv.port, timeout_ms=10000)
        done: dict = {}
        t = threading.Thread(target=lambda: done.update(a=slow.get_action(flat_obs(spec))))
        t.start()
        assert policy.started.wait(5)
        with PolicyClient(port=srv.port, timeout_ms=1000, retries=0) as fast:
            t0 = time.perf_counter()
            assert fast.ping()
            assert fast.metadata()["model_card"]["policy"] == "slow"
            assert time.perf_counter() - t0 < 0.5
        t.join(10)
        assert done["a"]["action.left_arm"].shape == (16, 7)
        slow.close()


def test_client_timeout_resets_the_socket_and_recovers(spec):
    policy = SlowPolicy(spec, delay_s=0.6)
    with ZmqPolicyServer(policy, port=0) as srv, PolicyClient(port=srv.port, timeout_ms=200) as c:
        t0 = time.perf_counter()
        with pytest.raises(PolicyTimeoutError):
            c.get_action(flat_obs(spec))
        assert time.perf_counter() - t0 < 1.0  # get_action is not retried
        time.sleep(0.6)
        assert c.ping()  # a fresh REQ socket after the timeout
        policy.delay_s = 0.0
        assert c.get_action(flat_obs(spec))["action.left_arm"].shape == (16, 7)


# Client-only behaviour (timeouts on a dead peer, retries, error mapping): client/tests.


def test_client_disconnecting_mid_request_leaves_the_server_healthy(spec):
    policy = SlowPolicy(spec, delay_s=0.4)
    with ZmqPolicyServer(policy, port=0) as srv:
        for _ in range(3):
            ctx = zmq.Context()
            s = ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(f"tcp://127.0.0.1:{srv.port}")
            from gr00t_exp_client import wire

            s.send(wire.encode({"endpoint": "get_action", "data": flat_obs(spec)}))
            policy.started.wait(2)
            s.close(0)
            ctx.term()
        # half a message: connect raw TCP and hang up
        import socket

        with socket.create_connection(("127.0.0.1", srv.port)) as raw:
            raw.sendall(b"\xff\x00\x00\x00\x00\x00\x01\x00\x7f")
        policy.delay_s = 0.0
        with PolicyClient(port=srv.port, timeout_ms=5000) as c:
            assert c.ping()
            assert c.get_action(flat_obs(spec))["action.left_arm"].shape == (16, 7)
        assert srv.running


def test_token_is_required_and_checked(const_policy, spec):
    with pytest.raises(InsecureBindError, match="api_token"):
        ZmqPolicyServer(const_policy, host="0.0.0.0", port=0)
    with ZmqPolicyServer(const_policy, host="0.0.0.0", port=0, api_token=TOKEN) as srv:
        anon = UpstreamStyleClient(srv.port)
        with pytest.raises(RuntimeError, match="Unauthorized"):
            anon.ping()
        anon.close()
        wrong = UpstreamStyleClient(srv.port, api_token="b" * 26)
        with pytest.raises(RuntimeError, match="Unauthorized"):
            wrong.get_action(flat_obs(spec))
        wrong.close()
        with PolicyClient(port=srv.port, api_token=TOKEN) as c:
            assert c.ping() and c.metadata()["auth"]["api_token"] is True
            assert c.get_action(flat_obs(spec))["action.left_arm"].shape == (16, 7)


def test_insecure_remote_bind_needs_the_explicit_opt_out(const_policy):
    with ZmqPolicyServer(const_policy, host="0.0.0.0", port=0, allow_insecure_remote=True) as srv:
        with PolicyClient(port=srv.port) as c:
            assert c.ping()


def test_oversized_messages_are_dropped_and_the_server_survives(const_policy, spec):
    with ZmqPolicyServer(const_policy, port=0, max_message_bytes=64 * 1024) as srv:
        obs = flat_obs(spec)
        obs["video.ego_view"] = np.zeros((1, 480, 640, 3), np.uint8)
        with PolicyClient(port=srv.port, timeout_ms=300, retries=0) as c:
            with pytest.raises(PolicyTimeoutError):
                c.get_action(obs)
        with PolicyClient(port=srv.port) as c:
            assert c.ping()


def test_curve_encryption_with_client_allow_list(tmp_path, const_policy, spec):
    import zmq.auth

    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    keys.mkdir()
    allowed.mkdir()
    _, server_secret = zmq.auth.create_certificates(str(keys), "server")
    client_public, client_secret = zmq.auth.create_certificates(str(keys), "client")
    zmq.auth.create_certificates(str(keys), "intruder")
    (allowed / "client.key").write_bytes(open(client_public, "rb").read())
    server_public = str(keys / "server.key")
    with ZmqPolicyServer(
        const_policy,
        host="0.0.0.0",
        port=0,
        curve_secret_key_file=server_secret,
        curve_authorized_keys_dir=str(allowed),
    ) as srv:
        with PolicyClient(
            port=srv.port, curve_server_key_file=server_public, curve_client_key_file=client_secret
        ) as c:
            assert c.get_action(flat_obs(spec))["action.left_arm"].shape == (16, 7)
            assert c.metadata()["auth"]["curve"] is True
        with PolicyClient(
            port=srv.port,
            timeout_ms=300,
            retries=0,
            curve_server_key_file=server_public,
            curve_client_key_file=str(keys / "intruder.key_secret"),
        ) as c:
            assert c.ping() is False  # handshake refused
        with PolicyClient(port=srv.port, timeout_ms=300, retries=0) as c:
            assert c.ping() is False  # plaintext refused


def test_replay_over_zmq_end_to_end(picknplace):
    policy = ReplayPolicy(
        picknplace, state_keys=["left_arm", "right_arm"], action_keys=["left_arm", "right_arm"],
        video_keys=["ego_view"], execution_horizon=8,
    )  # fmt: skip
    expected = policy.layout.read_columns(1, ["action"])["action"]
    obs = {
        "video.ego_view": np.zeros((1, 256, 256, 3), np.uint8),
        "state.left_arm": np.zeros((1, 7)),
        "state.right_arm": np.zeros((1, 7)),
        "annotation.human.action.task_description": ["pick the pear"],
    }
    with ZmqPolicyServer(policy, port=0) as srv, PolicyClient(port=srv.port) as c:
        info = c.reset({"episode_index": 1})
        assert info["episode_index"] == 1 and info["episode_length"] == len(expected)
        assert info["current_step"] == 0
        first = c.get_action(obs)
        second = c.get_action(obs)
        np.testing.assert_allclose(first["action.left_arm"], expected[0:16, 0:7], rtol=1e-6)
        np.testing.assert_allclose(second["action.right_arm"], expected[8:24, 22:29], rtol=1e-6)
        up = UpstreamStyleClient(srv.port)
        assert up.reset_n16({"episode_index": 1})["episode_length"] == len(expected)
        np.testing.assert_allclose(up.get_action(obs)["action.left_arm"], expected[0:16, 0:7], rtol=1e-6)
        up.close()
        with pytest.raises(PolicyServerError, match="episode_index 99"):
            c.reset({"episode_index": 99})


def test_replay_reads_the_v2_layout_without_the_data_package(picknplace, monkeypatch):
    import sys

    with_meta = ReplayPolicy(picknplace, action_keys=["left_hand"], execution_horizon=4)
    monkeypatch.setitem(sys.modules, "gr00t_exp.data.meta", None)  # import now fails
    without = ReplayPolicy(picknplace, action_keys=["left_hand"], execution_horizon=4)
    assert without.layout._meta is None and with_meta.layout._meta is not None
    assert without.spec == with_meta.spec
    np.testing.assert_array_equal(without._actions["left_hand"], with_meta._actions["left_hand"])
    assert without.reset({"episode_index": 3}) == with_meta.reset({"episode_index": 3})


def test_a_full_queue_answers_busy_and_recovers(spec):
    policy = SlowPolicy(spec, delay_s=0.5)
    results: list = []
    with ZmqPolicyServer(policy, port=0, max_queue=1) as srv:

        def call():
            with PolicyClient(port=srv.port, timeout_ms=5000) as c:
                try:
                    results.append(c.get_action(flat_obs(spec))["action.left_arm"].shape)
                except PolicyServerError as e:
                    results.append(e.code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(10)
        assert "busy" in results and (16, 7) in results and len(results) == 4
        with PolicyClient(port=srv.port, timeout_ms=5000) as c:
            assert c.get_action(flat_obs(spec))["action.left_arm"].shape == (16, 7)
