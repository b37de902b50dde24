"""`python run.py mode=bench bench=serve_hostile`: a ZeroMQ policy server under hostile peers.

A server process (constant policy, G1-sized spec, API token) is sent `bench.iters` messages of
every hostile class below from DEALER sockets on loopback, while a legitimate `PolicyClient`
keeps asking for actions and checks every answer. Reported: per class the messages answered
within `answer_ms` (or, for the classes the transport drops, that the server still answers), the
slowest answer, the server's peak RSS growth over its warmed-up baseline for one ~1 MB message of
each class and over the whole run, the legitimate client's failures and latency; then
`clients` concurrent legitimate clients for `concurrent_s` seconds. Writes bench_serve_hostile.json.

  python run.py mode=bench bench=serve_hostile                       # 10,000 of each class
  python run.py mode=bench bench=serve_hostile bench.iters=200 bench.params.concurrent_s=3

The same functions drive the bounded test (tests/serve/test_hostile.py).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import zmq
from gr00t_exp_client import PolicyClient, wire
from omegaconf import DictConfig, OmegaConf

from gr00t_exp.serve.base import ConstantPolicy
from gr00t_exp.serve.observation import ObservationSpec

log = logging.getLogger(__name__)

TOKEN = "bench-token-" + "x" * 24
MB = 1_000_000
SPEC = dict(
    video={"ego_view": (96, 128)},
    state={"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6},
    action={"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6},
    language_key="annotation.human.task_description",
)
SERVER_KW = dict(max_message_bytes=int(1.5 * MB), max_batch=8, request_timeout_ms=2000, handshake_ivl_ms=500)


def _npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def _req(endpoint: Any, data: Any = None, token: Any = TOKEN) -> bytes:
    msg: dict[str, Any] = {"endpoint": endpoint, "data": data}
    if token is not None:
        msg["api_token"] = token
    return msgpack.packb(msg, use_bin_type=True)


def legit_observation(batch: int | None = None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    pre = () if batch is None else (batch,)
    obs: dict[str, Any] = {}
    for k, (h, w) in SPEC["video"].items():
        obs[f"video.{k}"] = rng.integers(0, 255, (*pre, 1, h, w, 3), dtype=np.uint8)
    for k, d in SPEC["state"].items():
        obs[f"state.{k}"] = rng.standard_normal((*pre, 1, d))
    obs[SPEC["language_key"]] = ["pick"] * (batch or 1)
    return obs


# -- hostile classes: name -> (frames builder(rng, size), expect a reply) --------------------
def _garbage(rng, size):
    return [b"", rng.integers(0, 256, size, dtype=np.uint8).tobytes()]


def _declared_huge(rng, size):
    # 4-billion-entry array / map / 4 GB string / bin declared by 5 bytes, then junk
    heads = [
        b"\xdd\xff\xff\xff\xff",
        b"\xdf\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xc6\xff\xff\xff\xff",
    ]
    return [b"", heads[int(rng.integers(4))] + b"\x00" * size]


def _entries_bomb(rng, size):
    return [b"", b"\x81\xa4data" + b"\xdd" + struct.pack(">I", size - 12) + b"\x90" * (size - 12)]


def _deep(rng, size):
    return [b"", b"\x81\xa4data" + b"\x91" * (size - 6) + b"\xc0"]


def _long_str(rng, size):
    return [b"", _req("get_action", "a" * size)]


def _ext(rng, size):
    return [b"", msgpack.packb({"endpoint": "ping", "data": msgpack.ExtType(5, b"\x00" * size)})]


def _bad_token(rng, size):
    obs = {"video.ego_view": np.zeros(size, np.uint8)}
    return [b"", wire.encode({"endpoint": "get_action", "data": obs, "api_token": "wrong" * 5})]


def _no_token(rng, size):
    return [b"", _req("get_action", {"x": b"\x00" * size}, token=None)]


def _bad_endpoint(rng, size):
    choices = [[1, 2, 3], {"a": 1}, "kill", "no_such_" + "e" * 1000, b"get_action", None, 7]
    return [b"", _req(choices[int(rng.integers(len(choices)))], {"pad": b"\x00" * size})]


def _npy_bomb(rng, size):
    kinds = [
        _npy_header((1 << 40,)),  # a terabyte declared, nothing carried
        _npy_header((4,), "|O"),  # object dtype (pickle)
        _npy_header((1 << 60,), "<U0"),  # zero-sized elements
        _npy_header((2, 3), "<f4") + b"\x00" * 5,  # short data
    ]
    raw = kinds[int(rng.integers(len(kinds)))] + b"\x00" * size
    obs = {"video.ego_view": {"__ndarray_class__": True, "as_npy": raw}}
    return [b"", _req("get_action", obs)]


def _bad_batch(rng, size):
    batch = 0 if rng.integers(2) else 9
    obs = legit_observation(batch=batch) if batch else {
        **{f"state.{k}": np.zeros((0, 1, d)) for k, d in SPEC["state"].items()},
        "video.ego_view": np.zeros((0, 1, 96, 128, 3), np.uint8),
        SPEC["language_key"]: [],
    }  # fmt: skip
    return [b"", wire.encode({"endpoint": "get_action", "data": obs, "api_token": TOKEN})]


def _many_frames(rng, size):
    n = 16
    return [b"", *([b"\x00" * (size // n)] * n)]


def _oversize(rng, size):
    return [b"", b"\x00" * int(1.6 * MB)]  # above MAXMSGSIZE: the connection is dropped unread


CLASSES: dict[str, tuple[Callable, bool]] = {
    "garbage": (_garbage, True),
    "declared_huge": (_declared_huge, True),
    "entries_bomb": (_entries_bomb, True),
    "deep_nesting": (_deep, True),
    "long_string": (_long_str, True),
    "ext_type": (_ext, True),
    "bad_token_1mb": (_bad_token, True),
    "no_token_1mb": (_no_token, True),
    "bad_endpoint": (_bad_endpoint, True),
    "npy_bomb": (_npy_bomb, True),
    "bad_batch": (_bad_batch, True),
    "many_frames": (_many_frames, True),
    "oversize_frame": (_oversize, False),
}


# -- the server process ----------------------------------------------------------------------
def _peak_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _rss_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass


def _server_process(conn, server_kw: dict) -> None:
    from gr00t_exp.serve.zmq_server import ZmqPolicyServer

    logging.disable(logging.WARNING)  # hostile traffic would flood the log
    policy = ConstantPolicy(ObservationSpec(**SPEC), value=0.5)
    srv = ZmqPolicyServer(policy, port=0, api_token=TOKEN, **server_kw).start()
    conn.send(srv.port)
    while True:
        cmd = conn.recv()
        if cmd == "rss":
            conn.send({"rss_kb": _rss_kb(), "peak_kb": _peak_kb(), "fds": len(os.listdir("/proc/self/fd"))})
        elif cmd == "reset_peak":
            _reset_peak()
            conn.send(True)
        elif cmd == "stats":
            conn.send(
                {
                    "dropped_expired": srv.dropped_expired,
                    "dropped_abandoned": srv.dropped_abandoned,
                    "running": srv.running,
                }  # fmt: skip
            )
        else:
            srv.stop()
            conn.send(True)
            return


class ServerProcess:
    def __init__(self, server_kw: dict | None = None):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_server_process, args=(child, server_kw or SERVER_KW), daemon=True)
        self.proc.start()
        if not self.conn.poll(60):
            raise RuntimeError("the server process did not start")
        self.port = self.conn.recv()

    def ask(self, cmd: str) -> Any:
        self.conn.send(cmd)
        return self.conn.recv()

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.ask("stop")
            except (BrokenPipeError, EOFError):
                pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# -- the clients -----------------------------------------------------------------------------
class LegitClient(threading.Thread):
    """Asks for actions in a loop and checks each answer; counts failures."""

    def __init__(self, port: int, period_s: float = 0.01):
        super().__init__(daemon=True)
        self.port, self.period_s = port, period_s
        self.ok = self.failures = 0
        self.latencies_ms: list[float] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        obs = legit_observation()
        with PolicyClient(port=self.port, api_token=TOKEN, timeout_ms=3000, retries=0) as c:
            while not self._halt.is_set():
                t0 = time.perf_counter()
                try:
                    a = c.get_action(obs)
                    good = a["action.left_arm"].shape == (16, 7) and bool(np.all(a["action.left_arm"] == 0.5))
                except Exception as e:  # a failure is what is counted
                    good = False
                    if len(self.errors) < 5:
                        self.errors.append(f"{type(e).__name__}: {e}")
                self.latencies_ms.append((time.perf_counter() - t0) * 1e3)
                if good:
                    self.ok += 1
                else:
                    self.failures += 1
                self._halt.wait(self.period_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def send_class(port: int, name: str, n: int, size: int, answer_ms: float, seed: int = 0) -> dict:
    """Send n messages of class `name`; each must be answered within answer_ms (or, for a class
    the transport drops, the server must answer a ping within answer_ms afterwards)."""
    build, expect_reply = CLASSES[name]
    rng = np.random.default_rng(seed)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if not expect_reply:
        # The server drops this connection on every message: reconnect at once, queue at most
        # one message while disconnected (else they pile up in this process).
        sock.setsockopt(zmq.RECONNECT_IVL, 1)
        sock.setsockopt(zmq.SNDHWM, 1)
    sock.connect(f"tcp://127.0.0.1:{port}")
    answered = late = 0
    worst = 0.0
    frames = build(rng, size)
    try:
        for i in range(n):
            if i % 50 == 0:
                frames = build(rng, size)  # variety without paying the build on every message
            t0 = time.perf_counter()
            if not sock.poll(5000, zmq.POLLOUT):
                raise RuntimeError(f"{name}: cannot send for 5 s")
            sock.send_multipart(frames, copy=False)
            if expect_reply:
                if sock.poll(answer_ms):
                    sock.recv_multipart()
                    answered += 1
                else:
                    late += 1
                    sock.poll(5000) and sock.recv_multipart()  # noqa: B018 - drain a late reply
            elif i % max(1, n // 20) == 0 or i == n - 1:
                answered += int(_ping(ctx, port, answer_ms))
            worst = max(worst, (time.perf_counter() - t0) * 1e3)
    finally:
        sock.close(0)
        ctx.term()
    checked = n if expect_reply else len([i for i in range(n) if i % max(1, n // 20) == 0 or i == n - 1])
    return {"sent": n, "checked": checked, "answered_in_time": answered, "late": late, "worst_ms": worst}


def _ping(ctx: zmq.Context, port: int, answer_ms: float) -> bool:
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{port}")
    try:
        s.send(_req("ping"))
        return bool(s.poll(answer_ms + 200)) and msgpack.unpackb(s.recv()).get("status") == "ok"
    finally:
        s.close(0)


def abandoned_requests(port: int, n: int) -> None:
    """get_action requests whose clients hang up at once (their work must never be done)."""
    body = wire.encode({"endpoint": "get_action", "data": legit_observation(), "api_token": TOKEN})
    for _ in range(n):
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(f"tcp://127.0.0.1:{port}")
        s.send_multipart([b"", body])
        s.close(0)
        ctx.term()


def stalled_handshakes(port: int, n: int, hold_s: float, server: ServerProcess | None = None) -> dict:
    """Open n raw TCP connections that never speak ZMTP and hold them for hold_s; count those the
    server closed (EOF after its greeting) and its open descriptors while they are held."""
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=1))
        except OSError:
            break
    fds_open = server.ask("rss")["fds"] if server else None
    time.sleep(hold_s)
    fds_held = server.ask("rss")["fds"] if server else None
    closed = 0
    for s in socks:
        s.settimeout(0.05)
        try:
            while True:
                chunk = s.recv(4096)  # the server's greeting, then EOF once it gives up
                if not chunk:
                    closed += 1
                    break
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        except OSError:
            pass  # still open
        s.close()
    return {"opened": len(socks), "closed_by_server": closed, "server_fds_after_connect": fds_open,
            "server_fds_after_hold": fds_held}  # fmt: skip


def concurrent_clients(port: int, clients: int, seconds: float) -> dict:
    workers = [LegitClient(port, period_s=0.0) for _ in range(clients)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    for w in workers:
        w.stop()
    lat = np.concatenate([np.asarray(w.latencies_ms) for w in workers if w.latencies_ms] or [np.zeros(1)])
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": int(sum(w.ok + w.failures for w in workers)),
        "failures": int(sum(w.failures for w in workers)),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": [e for w in workers for e in w.errors][:5],
    }


def hostile_run(
    iters: int,
    size: int = MB,
    answer_ms: float = 100.0,
    clients: int = 16,
    concurrent_s: float = 30.0,
    server_kw: dict | None = None,
) -> dict:
    """The whole bench; returns the report dict."""
    server = ServerProcess(server_kw)
    report: dict[str, Any] = {"iters_per_class": iters, "message_bytes": size, "answer_ms": answer_ms}
    try:
        legit = LegitClient(server.port)
        legit.start()
        time.sleep(0.5)  # warm: first requests allocate the codec caches
        base = server.ask("rss")
        report["baseline_rss_mb"] = base["rss_kb"] / 1024
        # peak RSS growth for ONE ~1 MB message of each class
        one: dict[str, float] = {}
        for name in CLASSES:
            server.ask("reset_peak")
            rss0 = server.ask("rss")["rss_kb"]
            send_class(server.port, name, 1, size, answer_ms=1000)
            one[name] = (server.ask("rss")["peak_kb"] - rss0) / 1024
        report["peak_growth_one_message_mb"] = one
        server.ask("reset_peak")
        classes = {}
        for name in CLASSES:
            t0 = time.perf_counter()
            classes[name] = send_class(server.port, name, iters, size, answer_ms)
            classes[name]["seconds"] = time.perf_counter() - t0
            log.info("%s: %s", name, classes[name])
        t0 = time.perf_counter()
        abandoned_requests(server.port, min(iters, 1000))
        report["abandoned_requests"] = {"sent": min(iters, 1000), "seconds": time.perf_counter() - t0}
        fds0 = server.ask("rss")["fds"]
        hold = (server_kw or SERVER_KW)["handshake_ivl_ms"] / 1e3 + 1.0
        report["stalled_handshakes"] = {
            "server_fds_before": fds0,
            **stalled_handshakes(server.port, 200, hold, server),
        }
        report["classes"] = classes
        end = server.ask("rss")
        report["peak_growth_whole_run_mb"] = (end["peak_kb"] - base["rss_kb"]) / 1024
        legit.stop()
        lat = np.asarray(legit.latencies_ms)
        report["legit_client"] = {
            "requests": legit.ok + legit.failures,
            "failures": legit.failures,
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "max_ms": float(lat.max()),
            "errors": legit.errors,
        }
        report["server"] = server.ask("stats")
        report["concurrent"] = concurrent_clients(server.port, clients, concurrent_s)
        report["server_alive"] = server.proc.is_alive() and server.ask("stats")["running"]
    finally:
        server.close()
    return report


def run(cfg: DictConfig) -> int:
    p = {"size": MB, "answer_ms": 100.0, "clients": 16, "concurrent_s": 30.0}
    p.update(OmegaConf.to_container(cfg.bench.params, resolve=True) or {})
    report = hostile_run(int(cfg.bench.iters), int(p["size"]), float(p["answer_ms"]), int(p["clients"]),
                         float(p["concurrent_s"]))  # fmt: skip
    out = Path(cfg.paths.output_dir) / "bench_serve_hostile.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    bad = [k for k, c in report["classes"].items() if c["answered_in_time"] != c["checked"]]
    ok = not bad and report["legit_client"]["failures"] == 0 and report["concurrent"]["failures"] == 0
    print(f"classes answered late or not at all: {bad or 'none'}; written to {out}")
    return 0 if ok else 1
