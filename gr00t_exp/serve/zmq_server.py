"""ZeroMQ policy server, wire-compatible with upstream GR00T REQ clients (N1.5 and N1.6).

A ROUTER socket (which REQ clients talk to exactly as to a REP socket) is owned by one I/O thread
that decodes each request, checks the token, answers cheap endpoints (ping, metadata,
get_modality_config, kill) at once and queues `get_action` / `reset` for a single policy worker
thread; the worker's replies come back over an inproc socket and leave through the ROUTER. So
`ping` answers while an action is being computed, many clients can connect, and a client that
vanishes mid-request only loses its own reply (ROUTER drops replies to gone peers).

Safety: loopback bind by default (see security.check_bind), constant-time token check, optional
CurveZMQ encryption (+ client key allow-list), MAXMSGSIZE (larger frames drop the connection
before they are buffered) and a limit on the whole multi-frame message, `kill` off unless
enabled, never unpickles (wire.py). Against a hostile peer: each body is first scanned
(bounded.scan: declared lengths, entries, nesting, no allocation) and its token checked before
the full decode; each peer has at most one request queued; every queued request carries a
deadline (the client's `timeout_ms`, capped by `request_timeout_ms`) and is dropped unrun once
it expires, so abandoned requests cannot delay a live client; a short ZMTP handshake interval
and heartbeats reclaim connections that stall or die.
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
from gr00t_exp_client.bounded import DecodeLimits, scan
from gr00t_exp_client.memtune import tune_malloc
from gr00t_exp_client.protocol import MAX_MESSAGE_BYTES
from zmq.utils.monitor import recv_monitor_message

from gr00t_exp.serve.base import BasePolicy
from gr00t_exp.serve.security import TokenChecker, check_bind, load_curve_keypair
from gr00t_exp.serve.service import (
    SLOW_ENDPOINTS,
    PolicyService,
    RequestError,
    error_reply,
)

log = logging.getLogger(__name__)

_ARRAY2 = b"\x92"  # msgpack fixarray header of length 2: [action, info] without re-packing the action
# Frames of one request: REQ sends [identity, b"", body]; a DEALER may add routing frames.
MAX_FRAMES = 8


@dataclass
class _Job:
    envelope: list[bytes]
    endpoint: str
    data: Any
    t_recv: float
    decode_ms: float
    deadline: float  # perf_counter seconds; the worker drops the job unrun past it
    fd: int  # the peer connection's descriptor (ZMQ_SRCFD): its disconnect abandons the job


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
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        enable_kill: bool = False,
        max_queue: int = 64,
        protocol: str = "auto",
        max_batch: int = 64,
        request_timeout_ms: int = 10_000,
        handshake_ivl_ms: int = 2_000,
        max_decode_entries: int = DecodeLimits.max_entries,
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
        self.request_timeout_ms = int(request_timeout_ms)
        self.handshake_ivl_ms = int(handshake_ivl_ms)
        self.limits = DecodeLimits(max_entries=int(max_decode_entries))
        self.dropped_expired = 0  # requests whose deadline passed before the worker reached them
        self.dropped_abandoned = 0  # requests whose client disconnected before they were run
        # fd -> perf_counter time of its last disconnect (socket monitor, I/O thread); a job
        # received on that fd before then has no one waiting for it.
        self._gone: dict[int, float] = {}
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
            protocol=protocol,
            max_batch=max_batch,
        )
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._pending: dict[bytes, int] = {}  # peer identity -> queued requests (I/O thread only)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ctx: zmq.Context | None = None
        self._auth = None
        self.endpoint = ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ZmqPolicyServer:
        tune_malloc()
        self._ctx = zmq.Context()
        # router + inproc pair + CURVE authenticator: a small socket table is enough.
        self._ctx.setsockopt(zmq.MAX_SOCKETS, 64)
        router = self._ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        # A connection that has not finished the ZMTP handshake in this time is closed (default
        # 30 s), and heartbeats close dead ones: stalled peers cannot pile up file descriptors.
        router.setsockopt(zmq.HANDSHAKE_IVL, self.handshake_ivl_ms)
        router.setsockopt(zmq.HEARTBEAT_IVL, 5_000)
        router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 15_000)
        # Few frames buffered per peer: a flood waits in the peer's TCP window, not in our memory.
        # (At 16 libzmq's read throttling added ~10 ms to every 1.8 MB request; 64 costs nothing.)
        router.setsockopt(zmq.RCVHWM, 8 * MAX_FRAMES)
        router.setsockopt(zmq.SNDHWM, 16)
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
        monitor = router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        io = threading.Thread(
            target=self._io_loop, args=(router, results, monitor), name="zmq-io", daemon=True
        )
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
            if any(t.is_alive() for t in self._threads):
                # A policy call still running: term() would block until its socket closes. The
                # worker is a daemon thread; it discards its result and the process exits cleanly.
                log.warning("a policy call is still running; leaving it behind at shutdown")
            else:
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
    def _io_loop(self, router: zmq.Socket, results: zmq.Socket, monitor: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(results, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                if monitor in events:
                    while True:
                        try:
                            event = recv_monitor_message(monitor, zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if event["event"] == zmq.EVENT_DISCONNECTED:
                            self._gone[int(event["value"])] = time.perf_counter()
                if results in events:
                    while True:
                        try:
                            out = results.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._release(out[0])
                        router.send_multipart(out, copy=False)
                if router in events:
                    while True:
                        try:
                            parts, fd = self._recv_request(router)
                        except zmq.Again:
                            break
                        if parts is None:
                            continue
                        try:
                            self._on_request(router, parts, fd)
                        except Exception as e:  # never let one request stop the server
                            log.exception("request handling failed")
                            router.send_multipart(
                                [*parts[:-1], wire.encode(error_reply(f"internal error: {e}", "internal"))]
                            )
                if self.service.kill_requested:
                    time.sleep(0.05)  # let the kill reply leave
                    self._stop.set()
        except zmq.ContextTerminated:
            pass  # shutting down
        except Exception:
            log.exception("zmq I/O loop failed")
            self._stop.set()
        finally:
            router.disable_monitor()
            monitor.close(0)
            router.close(0)
            results.close(0)

    def _recv_request(self, router: zmq.Socket) -> tuple[list | None, int]:
        """One whole multi-frame message as [routing frames..., body buffer], or None when it
        was refused (too many frames or bytes in total: the rest is read and discarded, a short
        error answered), and the peer connection's fd. Raises zmq.Again when nothing is waiting."""
        first = router.recv(zmq.NOBLOCK, copy=False)
        fd = first.get(zmq.SRCFD)
        frames = [first]
        total = len(first)
        refused = ""
        while router.get(zmq.RCVMORE):
            frame = router.recv(copy=False)  # the rest of a message is already here
            total += len(frame)
            if refused:
                continue
            if len(frames) >= MAX_FRAMES:
                refused = f"a request has at most {MAX_FRAMES} frames"
            elif total > self.max_message_bytes:
                refused = f"request exceeds {self.max_message_bytes} bytes (deploy.server.max_message_bytes)"
            else:
                frames.append(frame)
        if len(frames) < 2:
            return None, fd  # not routable (a lone identity frame)
        # The envelope is everything up to the empty delimiter REQ puts before the body.
        envelope = [f.bytes for f in frames[:-1]]
        if refused:
            delim = envelope.index(b"") + 1 if b"" in envelope else 1
            router.send_multipart([*envelope[:delim], wire.encode(error_reply(refused, "too_large"))])
            return None, fd
        return [*envelope, frames[-1].buffer], fd

    def _release(self, identity: bytes) -> None:
        n = self._pending.get(identity, 0) - 1
        if n > 0:
            self._pending[identity] = n
        else:
            self._pending.pop(identity, None)

    def _on_request(self, router: zmq.Socket, frames: list, fd: int = -1) -> None:
        t_recv = time.perf_counter()
        if len(frames) < 2:
            return  # not a routable request
        envelope, body = frames[:-1], frames[-1]

        def reply(obj: Any) -> None:
            router.send_multipart([*envelope, wire.encode(obj)])

        try:
            head = scan(body, self.limits)
        except wire.WireError as e:
            reply(error_reply(f"cannot decode request: {e}", "bad_request"))
            return
        if not head.is_map:
            reply(error_reply("request must be a map {endpoint, data, api_token}", "bad_request"))
            return
        # Token first, from the cheap scan: an unauthenticated peer never gets the full decode.
        if not self._token.check(head.api_token):
            reply(error_reply("Unauthorized: Invalid API token", "unauthorized"))
            return
        endpoint = head.endpoint if "endpoint" in head.present else "get_action"
        if not isinstance(endpoint, str) or endpoint not in SLOW_ENDPOINTS:
            # Answered here, data unread: fast endpoints take none, unknown ones are refused.
            try:
                reply(self.service.handle(endpoint, None)[0])
            except RequestError as e:
                reply(error_reply(str(e), e.code))
            return
        identity = envelope[0]
        if self._pending.get(identity):
            # A REQ peer has one request in flight; more from one identity is a flood.
            reply(error_reply("a request from this connection is already queued; wait for its reply", "busy"))
            return
        try:
            # The images' .npy bytes the scan located stay in the received frame (no 1.84 MB copy).
            request = wire.decode(body, head.views)
        except wire.WireError as e:
            reply(error_reply(f"cannot decode request: {e}", "bad_request"))
            return
        decode_ms = (time.perf_counter() - t_recv) * 1e3
        timeout_ms = self.request_timeout_ms
        if isinstance(head.timeout_ms, int) and head.timeout_ms > 0:
            timeout_ms = min(timeout_ms, head.timeout_ms)
        deadline = t_recv + timeout_ms / 1e3
        job = _Job(envelope, endpoint, request.get("data"), t_recv, decode_ms, deadline, fd)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            reply(error_reply("server busy: too many queued requests, retry later", "busy"))
            return
        self._pending[identity] = self._pending.get(identity, 0) + 1

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
                if self._gone.get(job.fd, float("-inf")) > job.t_recv:
                    # Its client hung up: no one would read the result, so never compute it.
                    self.dropped_abandoned += 1
                    out = wire.encode(
                        error_reply("client disconnected before the request was run", "timeout")
                    )
                elif time.perf_counter() > job.deadline:
                    # Its client has given up (or will before a result could arrive): never run it.
                    self.dropped_expired += 1
                    out = wire.encode(error_reply("deadline exceeded before the request was run", "timeout"))
                else:
                    out = self._run_job(job)
                push.send_multipart([*job.envelope, out], copy=False)
        except zmq.ContextTerminated:
            pass  # shutting down while a job ran: its reply has nowhere to go
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
