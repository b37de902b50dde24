"""HTTP policy server (FastAPI + uvicorn), compatible with upstream's `--http-server` clients.

POST /act       {"observation": {...}} (+ optional "options", "return_lists"), or upstream's
                {"encoded": "<json text of that whole payload>"}; arrays json_numpy-encoded or
                plain nested lists.
                Reply: the action dict (json_numpy arrays, or lists with return_lists / ?format=list);
                per-stage times in the `Server-Timing` header.
GET  /health    {"status": "healthy", "model": "GR00T"}   (no token needed: load balancers)
GET  /metadata  protocol version + model card (token needed)
POST /reset     {"options": {...}}                         (token needed)
GET  /modality_config                                      (token needed)
Tokens: `Authorization: Bearer <token>` or `X-API-Token`, compared in constant time before the
body is read. Bodies above max_message_bytes get 413, JSON opening too many containers 400.
Against browsers and DNS rebinding: the Host header must name a loopback name, the bound address
or an `allowed_hosts` entry; a request carrying an Origin not in `allowed_origins` is refused;
POST bodies must be `application/json` (a cross-origin `text/plain` POST needs no preflight).
Binding rules as for ZeroMQ. The policy runs on one worker thread, so /health answers during an
action; beyond `max_queue` waiting requests the answer is 503, a request whose client left or
whose deadline (`request_timeout_ms`) passed is dropped unrun, and uvicorn's `limit_concurrency`
(`max_connections`) bounds open connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from gr00t_exp_client import json_codec
from gr00t_exp_client.bounded import DecodeLimits, check_json
from gr00t_exp_client.memtune import tune_malloc
from gr00t_exp_client.protocol import MAX_MESSAGE_BYTES
from gr00t_exp_client.wire import WireError

from gr00t_exp.serve.base import BasePolicy
from gr00t_exp.serve.security import LOOPBACK_NAMES, TokenChecker, check_bind, is_loopback
from gr00t_exp.serve.service import PolicyService, RequestError

log = logging.getLogger(__name__)

_STATUS = {"bad_request": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "too_large": 413,
           "unsupported_media_type": 415, "busy": 503, "timeout": 504, "internal": 500}  # fmt: skip
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


def _host_name(header: str) -> str:
    """'host:port' / '[v6]:port' -> the lower-case host name."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def allowed_host_names(bind_host: str, allowed_hosts: list[str] | tuple[str, ...] = ()) -> frozenset[str]:
    """Host header values accepted: loopback names and addresses, the bound address (unless a
    wildcard), and the configured ones ('*' = any)."""
    names = set(LOOPBACK_NAMES) | {"127.0.0.1", "::1"}
    if bind_host.strip("[]").lower() not in _WILDCARDS and not is_loopback(bind_host):
        names.add(bind_host.strip("[]").lower())
    names |= {str(h).strip("[]").lower() for h in allowed_hosts}
    return frozenset(names)


def build_app(
    policy: BasePolicy,
    api_token: str | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    *,
    protocol: str = "auto",
    max_batch: int = 64,
    max_queue: int = 64,
    request_timeout_ms: int = 10_000,
    bind_host: str = "127.0.0.1",
    allowed_hosts: list[str] | tuple[str, ...] = (),
    allowed_origins: list[str] | tuple[str, ...] = (),
    max_json_containers: int = DecodeLimits.max_json_containers,
):
    app = FastAPI(title="gr00t_exp policy server", docs_url=None, redoc_url=None, openapi_url=None)
    token = TokenChecker(api_token)
    service = PolicyService(
        policy,
        auth_token=token.required,
        max_message_bytes=max_message_bytes,
        transport="http",
        protocol=protocol,
        max_batch=max_batch,
    )
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-worker")
    app.state.worker = worker
    app.state.service = service
    app.state.dropped = 0  # requests dropped unrun (client gone or deadline passed)
    limits = DecodeLimits(max_json_containers=int(max_json_containers))
    hosts = allowed_host_names(bind_host, allowed_hosts)
    origins = frozenset(str(o).rstrip("/").lower() for o in allowed_origins)
    queued = [0]  # requests waiting for or running on the worker (event loop only)

    def err(message: str, code: str) -> Response:
        return JSONResponse({"error": message, "code": code, "detail": message}, status_code=_STATUS[code])

    @app.middleware("http")
    async def browser_guard(request: Request, call_next):
        # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example.
        host = _host_name(request.headers.get("host", ""))
        if "*" not in hosts and host not in hosts:
            return err(
                "Host header not allowed; add it to deploy.server.allowed_hosts if this server is "
                "reached under that name",
                "forbidden",
            )
        origin = request.headers.get("origin")
        if origin is not None and "*" not in origins and origin.rstrip("/").lower() not in origins:
            return err("cross-origin requests are refused (deploy.server.allowed_origins)", "forbidden")
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                return err(
                    "POST bodies must be sent with Content-Type: application/json", "unsupported_media_type"
                )
        return await call_next(request)

    def header_token(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.headers.get("x-api-token")

    def authorized(request: Request) -> bool:
        # Headers only: checked before the body is read, so an unauthenticated peer costs nothing.
        return token.check(header_token(request))

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_message_bytes):
            raise RequestError(f"request body exceeds {max_message_bytes} bytes", "too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_message_bytes:
                raise RequestError(f"request body exceeds {max_message_bytes} bytes", "too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def parse_json(request: Request) -> dict:
        body = await read_body(request)
        try:
            check_json(body, limits)
            # parsed off the event loop so /health stays responsive during a large body
            payload = (
                await asyncio.to_thread(json_codec.loads, body)
                if len(body) > 1 << 16
                else json_codec.loads(body)
            )
        except WireError as e:
            raise RequestError(f"cannot decode request: {e}") from None
        if not isinstance(payload, dict):
            raise RequestError(f"request body must be a JSON object, got {type(payload).__name__}")
        return payload

    async def in_worker(request: Request, fn):
        """Run `fn` on the policy worker: refused beyond max_queue, dropped unrun when the client
        has gone or the deadline passed while it waited."""
        if queued[0] >= max_queue:
            raise RequestError("server busy: too many queued requests, retry later", "busy")
        deadline = time.perf_counter() + request_timeout_ms / 1e3
        gone = asyncio.Event()

        def job():
            if gone.is_set() or time.perf_counter() > deadline:
                app.state.dropped += 1
                raise RequestError("deadline exceeded before the request was run", "timeout")
            return fn()

        queued[0] += 1
        try:
            fut = asyncio.get_running_loop().run_in_executor(worker, job)
            while True:
                done, _ = await asyncio.wait({fut}, timeout=0.1)
                if done:
                    return fut.result()
                if await request.is_disconnected():
                    gone.set()  # a job not yet started is dropped; a running one finishes
        finally:
            queued[0] -= 1

    @app.get("/health")
    async def health():
        return {"status": "healthy", "model": "GR00T"}

    @app.get("/metadata")
    async def metadata(request: Request):
        if not authorized(request):
            return err("Unauthorized: Invalid API token", "unauthorized")
        return JSONResponse(json_codec.loads(json_codec.dumps(service.metadata())))

    @app.get("/modality_config")
    async def modality_config(request: Request):
        if not authorized(request):
            return err("Unauthorized: Invalid API token", "unauthorized")
        return {k: v.as_dict() for k, v in policy.get_modality_config(service.generation).items()}

    @app.post("/reset")
    async def reset(request: Request):
        try:
            if not authorized(request):
                return err("Unauthorized: Invalid API token", "unauthorized")
            payload = await parse_json(request)
            data = {"options": payload.get("options")}
            reply, _ = await in_worker(request, lambda: service.handle("reset", data))
            return Response(json_codec.dumps(reply), media_type="application/json")
        except RequestError as e:
            return err(str(e), e.code)

    @app.post("/act")
    async def act(request: Request):
        t0 = time.perf_counter()
        try:
            if not authorized(request):
                return err("Unauthorized: Invalid API token", "unauthorized")
            payload = await parse_json(request)
            if "encoded" in payload:
                # Upstream's server: the JSON text of the whole payload, then its ["observation"].
                enc = payload["encoded"]
                if not isinstance(enc, str):
                    raise RequestError("'encoded' must be a JSON string of {\"observation\": ...}")
                try:
                    check_json(enc.encode("utf-8", "surrogatepass"), limits)
                    payload = json_codec.loads(enc)
                except WireError as e:
                    raise RequestError(f"cannot decode 'encoded': {e}") from None
                if not isinstance(payload, dict) or "observation" not in payload:
                    raise RequestError("'encoded' must hold a JSON object with an 'observation' key")
            if "observation" not in payload:
                raise RequestError("request body needs 'observation' (or upstream's 'encoded')")
            observation = payload["observation"]
            lists = bool(payload.get("return_lists")) or request.query_params.get("format") == "list"
            data = {"observation": observation, "options": payload.get("options")}
            decode_ms = (time.perf_counter() - t0) * 1e3
            (action, info), _ = await in_worker(request, lambda: service.handle("get_action", data))
            t1 = time.perf_counter()
            text = json_codec.dumps(action, lists=lists)
            ms = {
                "decode": decode_ms,
                **info.get("timing_ms", {}),
                "encode": (time.perf_counter() - t1) * 1e3,
            }
            timing = ", ".join(f"{k};dur={v:.3f}" for k, v in ms.items())
            return Response(text, media_type="application/json", headers={"Server-Timing": timing})
        except RequestError as e:
            return err(str(e), e.code)

    return app


class HttpPolicyServer:
    """`with HttpPolicyServer(policy, port=0) as srv:` serves on srv.port (uvicorn in a thread)."""

    def __init__(
        self,
        policy: BasePolicy,
        host: str = "127.0.0.1",
        port: int = 8000,
        api_token: str | None = None,
        allow_insecure_remote: bool = False,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        protocol: str = "auto",
        max_batch: int = 64,
        max_queue: int = 64,
        request_timeout_ms: int = 10_000,
        allowed_hosts: list[str] | tuple[str, ...] = (),
        allowed_origins: list[str] | tuple[str, ...] = (),
        max_connections: int = 64,
        max_json_containers: int = DecodeLimits.max_json_containers,
    ):
        check_bind(host, api_token, allow_insecure_remote)
        self.host, self.port = host, int(port)
        self.max_connections = int(max_connections)
        self.app = build_app(
            policy,
            api_token,
            max_message_bytes,
            protocol=protocol,
            max_batch=max_batch,
            max_queue=max_queue,
            request_timeout_ms=request_timeout_ms,
            bind_host=host,
            allowed_hosts=list(allowed_hosts or ()),
            allowed_origins=list(allowed_origins or ()),
            max_json_containers=max_json_containers,
        )
        self._server = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def _make_server(self):
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise OSError(f"cannot bind {self.host}:{self.port}: {e} (deploy.server.host/port)") from None
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            limit_concurrency=self.max_connections,  # beyond it: 503 at once
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)

    def start(self) -> HttpPolicyServer:
        tune_malloc()
        self._make_server()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="http-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("HTTP server did not start")
            time.sleep(0.01)
        log.info("HTTP policy server on http://%s:%d", self.host, self.port)
        return self

    def serve_forever(self) -> None:
        """Run in the calling thread (uvicorn handles SIGINT/SIGTERM in the main thread)."""
        tune_malloc()
        self._make_server()
        try:
            self._server.run(sockets=[self._sock])
        finally:
            self.app.state.worker.shutdown(wait=False)

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.app.state.worker.shutdown(wait=False)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> HttpPolicyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
