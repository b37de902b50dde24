"""`python run.py mode=bench bench=serve`: client round-trip latency and serving overhead on loopback.

A server process (ZeroMQ and/or HTTP) serves a constant policy (or a replay policy with
bench.params.policy=replay) with a G1-sized observation spec: two 480x640 RGB uint8 views and a
26-D state (7+7 arm joints, 6+6 Inspire hand joints); the client (this process) sends
`bench.warmup + bench.iters` requests and reports p50/p99/mean of the round trip, of the policy
time the server measured, and of the serving overhead = round trip - policy time (wire encode and
decode on both sides, transport, validation, queueing). Writes bench_serve.json to the output dir.

  python run.py mode=bench bench=serve bench.iters=500
  # the real model on the GPU (full-size N1.5, random weights, the serving fast path):
  python run.py mode=bench bench=serve bench.params.policy=gr00t 'bench.params.transports=[zmq]' \
      embodiment=unitree_g1_inspire_26d model=gr00t_n15

With `policy=gr00t` the server builds `Gr00tPolicy` exactly as `mode=serve` does with
`deploy.policy.random_init=true` (the composed `model`, `embodiment` and `deploy.policy` keys:
fast path, autocast, GPU preprocessing, warm-up); the observation follows the embodiment's keys
(views `height` x `width`), and the report adds the server's stage timing (preprocess, model) and
the policy's start-up report (model card).
  python run.py mode=bench bench=serve bench.params.transports=[zmq] bench.params.height=224 bench.params.width=224
"""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from gr00t_exp_client import PolicyClient
from gr00t_exp_client.memtune import tune_malloc
from omegaconf import DictConfig, OmegaConf

from gr00t_exp.serve.base import ConstantPolicy
from gr00t_exp.serve.observation import ObservationSpec
from gr00t_exp.serve.replay import ReplayPolicy
from gr00t_exp.serve.run import build_policy, spec_from_embodiment
from gr00t_exp.serve.zmq_server import ZmqPolicyServer

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "transports": ["zmq", "http"],
    "policy": "constant",  # constant | replay | gr00t (random-init model of the composed config)
    "dataset": None,  # replay: dataset root
    "views": 2,
    "height": 480,
    "width": 640,
    "state_dims": [7, 7, 6, 6],
    "action_horizon": 16,
}


def _spec_kwargs(p: dict) -> dict:
    views = {f"view_{i}": (int(p["height"]), int(p["width"])) for i in range(int(p["views"]))}
    names = ["left_arm", "right_arm", "left_hand", "right_hand"]
    dims = [int(d) for d in p["state_dims"]]
    state = {(names[i] if i < len(names) else f"s{i}"): d for i, d in enumerate(dims)}
    return {
        "video": views,
        "state": state,
        "action": dict(state),
        "language_key": "annotation.human.task_description",
        "action_horizon": int(p["action_horizon"]),
    }


def _serve_process(transport: str, p: dict, port_q, stop_ev, cfg_plain: dict | None = None) -> None:
    """Child process: serve until stop_ev is set."""
    if p["policy"] == "gr00t":
        logging.basicConfig(level=logging.INFO, format="[server][%(name)s][%(levelname)s] %(message)s")
        cfg = OmegaConf.create(cfg_plain)
        cfg.deploy.policy.random_init = True
        cfg.deploy.policy.image_size = [int(p["height"]), int(p["width"])]
        policy = build_policy(cfg)
    elif p["policy"] == "replay":
        policy = ReplayPolicy(p["dataset"], strict=False)
    else:
        policy = ConstantPolicy(ObservationSpec(**_spec_kwargs(p)))
    if transport == "zmq":
        server = ZmqPolicyServer(policy, port=0)
    else:
        # imported here: the HTTP server needs the optional fastapi extra
        from gr00t_exp.serve.http_server import HttpPolicyServer

        server = HttpPolicyServer(policy, port=0)
    server.start()
    port_q.put((server.port, policy.model_card()))
    stop_ev.wait()
    server.stop()


def _observation(spec_kw: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obs: dict[str, Any] = {
        f"video.{k}": rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        for k, (h, w) in spec_kw["video"].items()
    }
    obs.update({f"state.{k}": rng.standard_normal((1, d)) for k, d in spec_kw["state"].items()})
    obs[spec_kw["language_key"]] = ["pick up the apple and place it in the basket"]
    return obs


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "min": float(a.min()),
    }


def _bench_zmq(port: int, obs: dict, warmup: int, iters: int) -> dict:
    rtt, policy_ms, server_ms, stages = [], [], [], {}
    with PolicyClient(port=port, timeout_ms=30000) as c:
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            _, info = c.get_action_with_info(obs)
            dt = (time.perf_counter() - t0) * 1e3
            if i < warmup:
                continue
            t = info["timing_ms"]
            rtt.append(dt)
            policy_ms.append(t["policy"])
            server_ms.append(t["server"])
            for k in (
                "decode",
                "queue",
                "validate",
                "preprocess",
                "preprocess_host",
                "preprocess_device",
                "model",
                "backbone",
                "action_head",
                "postprocess",
                "encode",
            ):
                stages.setdefault(k, []).append(t.get(k, 0.0))
    overhead = [r - m for r, m in zip(rtt, policy_ms, strict=True)]
    return {
        "round_trip_ms": _stats(rtt),
        "policy_ms": _stats(policy_ms),
        "server_ms": _stats(server_ms),
        "overhead_ms": _stats(overhead),
        "server_stages_p50_ms": {k: float(np.median(v)) for k, v in stages.items()},
    }


def _bench_http(port: int, obs: dict, warmup: int, iters: int) -> dict:
    def enc(v):
        if isinstance(v, np.ndarray):
            return {
                "__numpy__": base64.b64encode(v.tobytes()).decode(),
                "dtype": v.dtype.str,
                "shape": list(v.shape),
            }
        return v

    rtt, policy_ms, enc_ms = [], [], []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            body = json.dumps({"observation": {k: enc(v) for k, v in obs.items()}})
            t1 = time.perf_counter()
            r = c.post("/act", content=body, headers={"content-type": "application/json"})
            r.raise_for_status()
            r.json()
            dt = (time.perf_counter() - t0) * 1e3
            if i < warmup:
                continue
            timing = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))
            rtt.append(dt)
            enc_ms.append((t1 - t0) * 1e3)
            policy_ms.append(float(timing["policy"]))
    overhead = [r - m for r, m in zip(rtt, policy_ms, strict=True)]
    return {
        "round_trip_ms": _stats(rtt),
        "policy_ms": _stats(policy_ms),
        "overhead_ms": _stats(overhead),
        "client_encode_ms": _stats(enc_ms),
    }


def run(cfg: DictConfig) -> int:
    tune_malloc()
    b = cfg.bench
    p = {**DEFAULTS, **OmegaConf.to_container(b.params, resolve=True)}
    unknown = set(p) - set(DEFAULTS)
    if unknown:
        log.error("bench.params has unknown keys %s; known: %s", sorted(unknown), sorted(DEFAULTS))
        return 2
    if p["policy"] not in ("constant", "replay", "gr00t"):
        log.error("bench.params.policy=%r: use constant, replay or gr00t", p["policy"])
        return 2
    if p["policy"] == "replay" and not p["dataset"]:
        log.error("bench.params.policy=replay needs bench.params.dataset=<dataset root>")
        return 2
    spec_kw = _spec_kwargs(p)
    if p["policy"] == "replay":
        rp = ReplayPolicy(p["dataset"], strict=False)
        spec_kw = {
            **spec_kw,
            "video": rp.spec.video,
            "state": rp.spec.state,
            "language_key": rp.spec.language_key,
        }
    cfg_plain = None
    if p["policy"] == "gr00t":
        # The embodiment's own keys and widths; every view at height x width.
        es = spec_from_embodiment(cfg.embodiment, [int(p["height"]), int(p["width"])])
        spec_kw = {
            **spec_kw,
            "video": es.video,
            "state": es.state,
            "language_key": es.language_key,
        }
        cfg_plain = {
            k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "embodiment", "deploy")
        }
    obs = _observation(spec_kw)
    nbytes = sum(v.nbytes for v in obs.values() if isinstance(v, np.ndarray))
    results: dict[str, Any] = {
        "observation": {k: list(v.shape) for k, v in obs.items() if isinstance(v, np.ndarray)},
        "observation_bytes": nbytes,
        "policy": p["policy"],
        "warmup": int(b.warmup),
        "iters": int(b.iters),
    }
    ctx = mp.get_context("spawn")
    for transport in p["transports"]:
        if transport not in ("zmq", "http"):
            log.error("bench.params.transports: unknown transport %r (zmq | http)", transport)
            return 2
        port_q, stop_ev = ctx.Queue(), ctx.Event()
        proc = ctx.Process(
            target=_serve_process, args=(transport, p, port_q, stop_ev, cfg_plain), daemon=True
        )
        proc.start()
        try:
            # a real model builds and captures / compiles its graphs first
            port, card = port_q.get(timeout=900 if p["policy"] == "gr00t" else 60)
            results.setdefault("model_card", card)
            fn = _bench_zmq if transport == "zmq" else _bench_http
            results[transport] = fn(port, obs, int(b.warmup), int(b.iters))
        finally:
            stop_ev.set()
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
        r = results[transport]
        log.info(
            "%s: round trip p50 %.2f ms p99 %.2f ms | policy p50 %.3f ms | serving overhead p50 %.2f ms p99 %.2f ms",
            transport,
            r["round_trip_ms"]["p50"],
            r["round_trip_ms"]["p99"],
            r["policy_ms"]["p50"],
            r["overhead_ms"]["p50"],
            r["overhead_ms"]["p99"],
        )
    out = Path(cfg.paths.output_dir) / "bench_serve.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0
