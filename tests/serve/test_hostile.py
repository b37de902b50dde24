"""A hostile peer cannot starve the server (bounded versions of `bench=serve_hostile`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import msgpack
import numpy as np
import pytest
import zmq
from gr00t_exp_client import PolicyClient, PolicyServerError, PolicyTimeoutError, wire

from gr00t_exp.bench.serve_hostile import CLASSES, MB, hostile_run, send_class, stalled_handshakes
from gr00t_exp.serve.base import ConstantPolicy
from gr00t_exp.serve.http_server import HttpPolicyServer
from gr00t_exp.serve.zmq_server import ZmqPolicyServer

from .conftest import SlowPolicy, flat_obs

ROOT = Path(__file__).resolve().parents[2]


def test_every_hostile_class_is_answered_fast_with_bounded_memory():
    r = hostile_run(iters=40, size=MB, answer_ms=100, clients=16, concurrent_s=2)
    for name, c in r["classes"].items():
        assert c["answered_in_time"] == c["checked"] > 0, (name, c)
    assert max(r["peak_growth_one_message_mb"].values()) <= 32, r["peak_growth_one_message_mb"]
    assert r["peak_growth_whole_run_mb"] <= 64
    assert r["legit_client"]["failures"] == 0 and r["legit_client"]["requests"] > 10, r["legit_client"]
    assert r["concurrent"]["failures"] == 0 and r["concurrent"]["requests"] > 16, r["concurrent"]
    sh = r["stalled_handshakes"]
    assert (
        sh["closed_by_server"] == sh["opened"] and sh["server_fds_after_hold"] <= sh["server_fds_before"] + 5
    )
    assert r["server_alive"]


@pytest.fixture
def slow(spec):
    policy = SlowPolicy(spec, delay_s=0.3)
    with ZmqPolicyServer(policy, port=0, protocol="n1.5") as srv:
        yield policy, srv


def _dealer(ctx: zmq.Context, port: int) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{port}")
    return s


def test_abandoned_requests_are_never_computed(slow, spec):
    policy, srv = slow
    body = wire.encode({"endpoint": "get_action", "data": flat_obs(spec)})
    ctx = zmq.Context()
    for _ in range(8):  # 8 x 0.3 s of work, whose clients hang up at once
        s = _dealer(ctx, srv.port)
        s.send_multipart([b"", body])
        time.sleep(0.01)
        s.close(0)
    ctx.term()
    time.sleep(0.2)
    with PolicyClient(port=srv.port, timeout_ms=5000) as c:
        t0 = time.perf_counter()
        assert c.get_action(flat_obs(spec))["action.left_arm"].shape == (16, 7)
        elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, elapsed  # at most the one already running, not 8 x 0.3 s
    assert srv.dropped_abandoned >= 6


def test_expired_requests_are_dropped_unrun(slow, spec):
    policy, srv = slow
    ctx = zmq.Context()
    first = _dealer(ctx, srv.port)
    first.send_multipart([b"", wire.encode({"endpoint": "get_action", "data": flat_obs(spec)})])
    assert policy.started.wait(2)
    late = _dealer(ctx, srv.port)  # its client only waits 50 ms: expired before the worker is free
    late.send_multipart(
        [b"", wire.encode({"endpoint": "get_action", "data": flat_obs(spec), "timeout_ms": 50})]
    )
    assert late.poll(3000)
    reply = msgpack.unpackb(late.recv_multipart()[-1])
    assert reply["code"] == "timeout" and srv.dropped_expired == 1
    first.close(0)
    late.close(0)
    ctx.term()


def test_one_connection_cannot_fill_the_queue(slow, spec):
    _, srv = slow
    ctx = zmq.Context()
    s = _dealer(ctx, srv.port)
    body = wire.encode({"endpoint": "get_action", "data": flat_obs(spec)})
    for _ in range(5):
        s.send_multipart([b"", body])
    codes = []
    for _ in range(5):
        assert s.poll(3000)
        reply = wire.decode(s.recv_multipart()[-1])
        codes.append(reply.get("code", "ok") if isinstance(reply, dict) else "ok")
    assert codes.count("busy") == 4 and codes.count("ok") == 1
    s.close(0)
    ctx.term()


@pytest.mark.parametrize("batch,match", [(0, "batch size 0"), (9, "exceeds this server's limit of 8")])
def test_batch_size_bounds(const_policy, spec, batch, match):
    with ZmqPolicyServer(const_policy, port=0, max_batch=8) as srv, PolicyClient(port=srv.port) as c:
        obs = flat_obs(spec, batch=max(batch, 1))
        if batch == 0:  # every array with an empty first axis
            obs = {k: (v[:0] if isinstance(v, np.ndarray) else []) for k, v in obs.items()}
        with pytest.raises(PolicyServerError, match=match) as e:
            c.get_action(obs)
        assert e.value.code == "bad_request"
        assert c.metadata()["max_batch"] == 8


def test_token_is_checked_before_the_body_is_decoded(const_policy, spec, monkeypatch):
    token = "t" * 24
    decoded = []
    real = wire.decode
    monkeypatch.setattr(wire, "decode", lambda b: decoded.append(1) or real(b))
    with ZmqPolicyServer(const_policy, port=0, api_token=token) as srv:
        ctx = zmq.Context()
        s = _dealer(ctx, srv.port)
        s.send_multipart(
            [b"", wire.encode({"endpoint": "get_action", "data": flat_obs(spec), "api_token": "x"})]
        )
        assert s.poll(2000) and msgpack.unpackb(s.recv_multipart()[-1])["code"] == "unauthorized"
        assert decoded == []  # refused from the cheap scan
        s.close(0)
        ctx.term()


def test_stalled_handshakes_are_closed(const_policy):
    with ZmqPolicyServer(const_policy, port=0, handshake_ivl_ms=300) as srv:
        r = stalled_handshakes(srv.port, 30, hold_s=1.0)
        assert r["closed_by_server"] == r["opened"] == 30
        with PolicyClient(port=srv.port) as c:
            assert c.ping()


def test_whole_message_limit_counts_every_frame(const_policy):
    with ZmqPolicyServer(const_policy, port=0, max_message_bytes=100_000) as srv:
        r = send_class(srv.port, "many_frames", 5, 800_000, answer_ms=1000)  # 16 frames of 50 kB
        assert r["answered_in_time"] == 5
        assert set(CLASSES) >= {"many_frames", "oversize_frame"}


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import signal, sys
    from tests.serve.conftest import SlowPolicy, small_spec
    from gr00t_exp.serve.zmq_server import ZmqPolicyServer
    srv = ZmqPolicyServer(SlowPolicy(small_spec(), delay_s=2.0), port=0).start()
    signal.signal(signal.SIGTERM, lambda *_: srv.request_stop())  # as serve/run.py does
    print(srv.port, flush=True)
    srv.serve_forever()
    print("clean exit", flush=True)
    """
)


def test_sigterm_during_a_job_shuts_down_cleanly(spec):
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        port = int(proc.stdout.readline())
        c = PolicyClient(port=port, timeout_ms=5000, retries=0)

        def call() -> None:
            try:
                c.get_action(flat_obs(spec))
            except (PolicyTimeoutError, PolicyServerError):
                pass  # the server stops under it: no answer is expected

        t = threading.Thread(target=call, daemon=True)
        t.start()
        time.sleep(0.8)  # the job is running
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "clean exit" in out
    assert "Traceback" not in err and "ContextTerminated" not in err, err


# -- HTTP --------------------------------------------------------------------------------------
@pytest.fixture
def http_url(spec):
    with HttpPolicyServer(ConstantPolicy(spec), port=0, max_batch=4, max_queue=1) as srv:
        yield f"http://127.0.0.1:{srv.port}"


def test_http_refuses_foreign_hosts_origins_and_simple_posts(http_url):
    assert httpx.get(http_url + "/health").status_code == 200
    assert httpx.get(http_url + "/health", headers={"Host": "localhost:1"}).status_code == 200
    r = httpx.get(http_url + "/health", headers={"Host": "evil.example"})
    assert r.status_code == 403 and "allowed_hosts" in r.json()["error"]
    r = httpx.post(http_url + "/act", json={}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = httpx.post(http_url + "/act", content=b'{"observation": {}}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_http_allowed_hosts_and_origins_are_configurable(spec):
    with HttpPolicyServer(
        ConstantPolicy(spec), port=0, allowed_hosts=["gpu-host"], allowed_origins=["http://ui.local"]
    ) as srv:
        url = f"http://127.0.0.1:{srv.port}"
        assert httpx.get(url + "/health", headers={"Host": "gpu-host:8000"}).status_code == 200
        assert httpx.get(url + "/health", headers={"Origin": "http://ui.local"}).status_code == 200


def test_http_max_queue_answers_busy(spec):
    policy = SlowPolicy(spec, delay_s=0.5)
    body = {
        "observation": {
            k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in flat_obs(spec).items()
        }
    }
    with HttpPolicyServer(policy, port=0, max_queue=1) as srv:
        url = f"http://127.0.0.1:{srv.port}/act"
        codes: list[int] = []
        threads = [threading.Thread(target=lambda: codes.append(httpx.post(url, json=body, timeout=10).status_code))
                   for _ in range(3)]  # fmt: skip
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(10)
    assert 503 in codes and 200 in codes
