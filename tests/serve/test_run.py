"""mode=serve and mode=bench bench=serve entry points."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from gr00t_exp_client import PolicyClient

from gr00t_exp.config.compose import compose_config
from gr00t_exp.serve.run import build_policy, build_server, run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_build_replay_policy_from_config(picknplace):
    cfg = compose_config(["mode=serve", "deploy=replay", f"deploy.policy.dataset={picknplace}"])
    policy = build_policy(cfg)
    assert policy.kind == "replay"
    assert list(policy.spec.state) == ["left_arm", "right_arm", "left_hand", "right_hand"]  # embodiment keys
    server = build_server(cfg, policy)
    assert server.host == "127.0.0.1" and server.port == 5555  # not started: nothing bound


def test_remote_bind_without_token_fails_with_exit_code_2(picknplace, monkeypatch):
    monkeypatch.delenv("GR00T_EXP_API_TOKEN", raising=False)
    cfg = compose_config(
        ["mode=serve", "deploy=replay", f"deploy.policy.dataset={picknplace}", "deploy.server.host=0.0.0.0"]
    )
    assert run(cfg) == 2
    cfg = compose_config(["mode=serve", "deploy=zmq"])  # gr00t without a checkpoint
    assert run(cfg) == 2


def test_unknown_deploy_keys_fail_at_composition():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_config(["deploy.server.bind_all=true"])


@pytest.mark.slow
def test_run_py_mode_serve_end_to_end(picknplace, repo_root, tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "run.py", "mode=serve", "deploy=replay", f"deploy.policy.dataset={picknplace}",
         f"deploy.server.port={port}", "deploy.server.enable_kill=true", f"hydra.run.dir={tmp_path}"],
        cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with PolicyClient(port=port, timeout_ms=1000, retries=0) as c:
            deadline = time.monotonic() + 90
            while not c.ping():
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "server did not come up"
            assert c.metadata()["model_card"]["policy"] == "replay"
            assert c.kill()["status"] == "ok"
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.slow
def test_bench_serve_writes_figures(tmp_path):
    from gr00t_exp.bench.serve import run as bench_run

    cfg = compose_config(
        ["mode=bench", "bench=serve", "bench.iters=20", "bench.warmup=3", "bench.params.transports=[zmq,http]",
         "bench.params.height=96", "bench.params.width=128"],
        output_dir=tmp_path,
    )  # fmt: skip
    assert bench_run(cfg) == 0
    res = json.loads((tmp_path / "bench_serve.json").read_text())
    for t in ("zmq", "http"):
        r = res[t]
        assert r["round_trip_ms"]["p50"] > 0 and r["overhead_ms"]["p50"] <= r["round_trip_ms"]["p50"]
    assert res["observation"]["video.view_0"] == [1, 96, 128, 3]


def test_constant_policy_from_the_g1_inspire_embodiment():
    cfg = compose_config(
        ["mode=serve", "deploy.policy.kind=constant", "deploy.policy.image_size=[480,640]",
         "embodiment=unitree_g1_inspire_26d"]
    )  # fmt: skip
    policy = build_policy(cfg)
    assert sum(policy.spec.state.values()) == 26 and len(policy.spec.video) == 2
    assert set(policy.spec.video.values()) == {(480, 640)}
    cfg = compose_config(["mode=serve", "deploy.policy.kind=nonsense"])
    with pytest.raises(ValueError, match="gr00t, replay or constant"):
        build_policy(cfg)
