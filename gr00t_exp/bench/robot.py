"""`python run.py mode=bench bench=robot`: command-loop jitter at the runner's command rate
(deploy.robot.control.command_hz) and observation-to-command latency, against the fakes (separate
process) and a local ZMQ policy server (ReplayPolicy).

Also runnable directly: `python -m gr00t_exp.bench.robot --seconds 10`.
Prints one JSON line: p50/p99/max period error of the command loop, lateness, policy round trip,
observation -> first command using that chunk.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from gr00t_exp_client import PolicyClient
from omegaconf import DictConfig

from gr00t_exp.robot.config import ControlConfig, RobotConfig
from gr00t_exp.robot.fakes import FakeDfxHands, FakeG1
from gr00t_exp.robot.recorder import Recorder
from gr00t_exp.robot.runner import run_robot
from gr00t_exp.serve.replay import ReplayPolicy
from gr00t_exp.serve.zmq_server import ZmqPolicyServer

DIMS = {"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6}
FPS = 30.0
# The runner's default command rate: the benchmark measures what the robot runs.
COMMAND_HZ = ControlConfig().command_hz


def _fakes(domain_id: int, stop) -> None:
    g1 = FakeG1(domain_id)
    g1.record_history = False
    with g1, FakeDfxHands(domain_id):
        stop.wait()


def _dataset(root: Path, n: int = 600) -> Path:
    rec = Recorder(root, FPS, DIMS, DIMS, [], "bench", "annotation.human.task_description")
    t = np.arange(n) / FPS
    for i in range(n):
        arm = 0.3 * np.sin(2 * np.pi * 0.5 * t[i] + np.arange(7) * 0.2)
        hand = np.full(6, 0.5 + 0.3 * np.sin(t[i]))
        row = {"left_arm": arm, "right_arm": -arm * 0.5, "left_hand": hand, "right_hand": hand}
        rec.add(t[i], row, row, {})
    return rec.save()


def bench(seconds: float = 10.0, command_hz: float = COMMAND_HZ) -> dict:
    domain_id = random.randint(20, 230)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_fakes, args=(domain_id, stop), daemon=True)
    proc.start()
    with tempfile.TemporaryDirectory() as tmp:
        src = _dataset(Path(tmp) / "src")
        policy = ReplayPolicy(src, action_horizon=16, execution_horizon=8)
        try:
            with ZmqPolicyServer(policy, host="127.0.0.1", port=0) as srv:
                client = PolicyClient("127.0.0.1", srv.port, timeout_ms=2000)
                rc = RobotConfig()
                rc.dds.domain_id, rc.dds.interface = domain_id, "lo"
                rc.arm.weight_ramp_s = 0.5
                rc.arm.lowstate_timeout_s = 10.0
                rc.safety.confirm = False
                rc.safety.max_episode_s = seconds
                rc.control.fps = FPS
                rc.control.command_hz = command_hz
                emb = SimpleNamespace(
                    name="bench",
                    state_keys=[f"state.{k}" for k in DIMS],
                    action_keys=[f"action.{k}" for k in DIMS],
                    video_keys=[],
                    language_key="annotation.human.task_description",
                    modality=None,
                )
                res = run_robot(rc, emb, client)
                client.close()
        finally:
            stop.set()
            proc.join(5)
    s = res.summary()
    per = np.abs(np.asarray(res.periods) - res.period_s) * 1e3
    s.update(
        {
            "command_hz": command_hz,
            "seconds": seconds,
            "period_error_p50_ms": float(np.percentile(per, 50)),
            "achieved_hz": float(1.0 / np.mean(res.periods)),
            "policy_latency_p99_ms": float(np.percentile(np.asarray(res.policy_latency) * 1e3, 99)),
        }
    )
    return s


def run(cfg: DictConfig) -> int:
    p = dict(cfg.bench.params or {})
    out = bench(float(p.get("seconds", 10.0)), float(p.get("command_hz", COMMAND_HZ)))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--hz", type=float, default=COMMAND_HZ)
    a = ap.parse_args()
    print(json.dumps(bench(a.seconds, a.hz)))
