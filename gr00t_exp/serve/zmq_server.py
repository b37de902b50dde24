"""ZeroMQ policy server, wire-compatible with upstream GR00T REQ clients (N1.5 and N1.6).

A ROUTER socket (which REQ clients talk to exactly as to a REP socket) is owned by one I/O thread
that decodes each request, checks the token, answers cheap endpoints (ping, metadata,
get_modality_config, kill) at once and queues `get_action` / `reset` for a single policy worker
thread; the worker's replies come back over an inproc socket and leave through the ROUTER. So
`ping` answers while an action is being computed, many clients can connect, and a client that
vanishes mid-request only loses its own reply (ROUTER drops replies to gone peers).

Safety: loopback bind by default (see security.check_bind), constant-time token check, optional
CurveZMQ encryption (+ client key allow-list), MAXMSGSIZE (larger messages drop the connection
before they are buffered), `kill` off unless enabled, never unpickles (wire.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from gr00t_exp_client import wire
from gr00t_exp_client.memtune import tune_malloc

from gr00t_exp.serve.base import BasePolicy
from gr00t_exp.serve.security import TokenChecker, check_bind, load_curve_keypair
from gr00t_exp.serve.service import (
    FAST_ENDPOINTS,
    PolicyService,
    RequestError,
    error_reply,
)

log = logging.getLogger(__name__)

_ARRAY2 = b"\x92"  # msgpack fixarray header of length 2: [action, info] without re-packing the action


@dataclass
class _Job:
    envelope: list[bytes]
    endpoint: str
    data: Any
    t_recv: float
    decode_ms: float


class ZmqPolicyServer:
    """`with ZmqPolicyServer(policy, port=0) as srv: ...` serves on srv.port until the block ends."""

    def __init__(
        self,
        policy: BasePolicy,
        host: str = "127.0.0.1",
        port: int = 5555,
        api_token: str | None = None,
        allow_insecure_remote: bool = False,
        curve_secret_key_file: str | Path | None = None,
        curve_authorized_keys_dir: str | Path | None = None,
        max_message_bytes: int = 64 * 1024 * 1024,
        enable_kill: bool = False,
        max_queue: int = 64,
    ):
        check_bind(
            host, api_token, allow_insecure_remote, curve_authenticated=bool(curve_authorized_keys_dir)
        )
        if curve_authorized_keys_dir and not curve_secret_key_file:
            raise ValueError(
                "deploy.server.curve_authorized_keys_dir needs deploy.server.curve_secret_key_file"
            )
        self.policy = policy
        self.host = host
        self.port = port
        self.max_message_bytes = int(max_message_bytes)
        self._token = TokenChecker(api_token)
        self._curve_file = curve_secret_key_file
        self._curve_dir = curve_authorized_keys_dir
        self.service = PolicyService(
            policy,
            auth_token=self._token.required,
            curve=bool(curve_secret_key_file),
            enable_kill=enable_kill,
            max_message_bytes=self.max_message_bytes,
            transport="zmq",
        )
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ctx: zmq.Context | None = None
        self._auth = None
        self.endpoint = ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ZmqPolicyServer:
        tune_malloc()
        self._ctx = zmq.Context()
        router = self._ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        if self._curve_file:
            public, secret = load_curve_keypair(self._curve_file)
            if not secret:
                raise ValueError(f"{self._curve_file} holds no secret key (use the .key_secret file)")
            if self._curve_dir:
                from zmq.auth.thread import ThreadAuthenticator

                self._auth = ThreadAuthenticator(self._ctx)
                self._auth.start()
                self._auth.configure_curve(domain="*", location=str(self._curve_dir))
            router.curve_secretkey = secret
            router.curve_publickey = public
            router.curve_server = True
        host = "[" + self.host + "]" if ":" in self.host else self.host
        try:
            router.bind(f"tcp://{host}:{self.port}")
        except zmq.ZMQError as e:
            router.close()
            self._ctx.term()
            raise OSError(f"cannot bind tcp://{host}:{self.port}: {e} (deploy.server.host/port)") from None
        self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        results = self._ctx.socket(zmq.PULL)
        results.bind(f"inproc://results-{id(self)}")
        io = threading.Thread(target=self._io_loop, args=(router, results), name="zmq-io", daemon=True)
        worker = threading.Thread(target=self._worker_loop, name="policy-worker", daemon=True)
        self._threads = [io, worker]
        for t in self._threads:
            t.start()
        log.info("ZMQ policy server on %s (%s policy)", self.endpoint, self.policy.kind)
        return self

    def request_stop(self) -> None:
        """Ask serve_forever to return (safe from signal handlers)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:
            self._jobs.put_nowait(None)  # wake the worker
        except queue.Full:
            pass
        for t in self._threads:
            t.join(timeout)
        if self._auth is not None:
            self._auth.stop()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def serve_forever(self) -> None:
        """Block until stop() is called (another thread, a signal handler) or `kill` (if enabled)."""
        if self._ctx is None:
            self.start()
        try:
            while not self._stop.wait(0.2):
                if not all(t.is_alive() for t in self._threads):
                    raise RuntimeError("a server thread died; see the log")
        finally:
            self.stop()

    @property
    def running(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads) and not self._stop.is_set()

    def __enter__(self) -> ZmqPolicyServer:
        return self.start() if self._ctx is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- threads --------------------------------------------------------------------------
    def _io_loop(self, router: zmq.Socket, results: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(results, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                if results in events:
                    while True:
                        try:
                            router.send_multipart(results.recv_multipart(zmq.NOBLOCK), copy=False)
                        except zmq.Again:
                            break
                if router in events:
                    while True:
                        try:
                            frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        # Routing frames as bytes (tiny); the body stays a zero-copy buffer.
                        parts = [f.bytes for f in frames[:-1]] + [frames[-1].buffer]
                        try:
                            self._on_request(router, parts)
                        except Exception as e:  # never let one request stop the server
                            log.exception("request handling failed")
                            if len(parts) >= 2:
                                router.send_multipart(
                                    [
                                        *parts[:-1],
                                        wire.encode(error_reply(f"internal error: {e}", "internal")),
                                    ]
                                )
                if self.service.kill_requested:
                    time.sleep(0.05)  # let the kill reply leave
                    self._stop.set()
        except Exception:
            log.exception("zmq I/O loop failed")
            self._stop.set()
        finally:
            router.close(0)
            results.close(0)

    def _on_request(self, router: zmq.Socket, frames: list) -> None:
        t_recv = time.perf_counter()
        if len(frames) < 2:
            return  # not a routable request
        envelope, body = frames[:-1], frames[-1]

        def reply(obj: Any) -> None:
            router.send_multipart([*envelope, wire.encode(obj)])

        try:
            request = wire.decode(body)
        except wire.WireError as e:
            reply(error_reply(f"cannot decode request: {e}", "bad_request"))
            return
        decode_ms = (time.perf_counter() - t_recv) * 1e3
        if not isinstance(request, dict):
            reply(error_reply(f"request must be a map, got {type(request).__name__}", "bad_request"))
            return
        if not self._token.check(request.get("api_token")):
            reply(error_reply("Unauthorized: Invalid API token", "unauthorized"))
            return
        endpoint = request.get("endpoint", "get_action")
        data = request.get("data")
        if not isinstance(endpoint, str) or endpoint in FAST_ENDPOINTS:
            try:
                reply(self.service.handle(endpoint, data)[0])
            except RequestError as e:
                reply(error_reply(str(e), e.code))
            return
        try:
            self._jobs.put_nowait(_Job(envelope, endpoint, data, t_recv, decode_ms))
        except queue.Full:
            reply(error_reply("server busy: too many queued requests, retry later", "busy"))

    def _worker_loop(self) -> None:
        assert self._ctx is not None
        push = self._ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(f"inproc://results-{id(self)}")
        try:
            while not self._stop.is_set():
                try:
                    job = self._jobs.get(timeout=0.1)
                except queue.Empty:
                    continue
                if job is None:
                    break
                push.send_multipart([*job.envelope, self._run_job(job)], copy=False)
        finally:
            push.close(0)

    def _run_job(self, job: _Job) -> bytes:
        t_start = time.perf_counter()
        try:
            result, timing = self.service.handle(job.endpoint, job.data)
        except RequestError as e:
            return wire.encode(error_reply(str(e), e.code))
        try:
            if isinstance(result, list) and len(result) == 2 and isinstance(result[1], dict):
                # N1.6 [action, info]: encode the action first so its encode time is in the info.
                t0 = time.perf_counter()
                action_bytes = wire.encode(result[0])
                t1 = time.perf_counter()
                info = result[1]
                ms = dict(info.get("timing_ms", {}))
                ms["decode"] = job.decode_ms
                ms["queue"] = (t_start - job.t_recv) * 1e3 - job.decode_ms
                ms["encode"] = (t1 - t0) * 1e3
                ms["server"] = (time.perf_counter() - job.t_recv) * 1e3
                return _ARRAY2 + action_bytes + wire.encode({**info, "timing_ms": ms})
            return wire.encode(result)
        except Exception as e:  # e.g. a policy returning something unencodable
            log.exception("cannot encode the reply")
            return wire.encode(error_reply(f"internal error: cannot encode reply: {e}", "internal"))
