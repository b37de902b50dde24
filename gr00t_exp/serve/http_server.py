"""HTTP policy server (FastAPI + uvicorn), compatible with upstream's `--http-server` clients.

POST /act       {"observation": {...}} or {"encoded": "<json text>"} (+ optional "options",
                "api_token", "return_lists"); arrays json_numpy-encoded or plain nested lists.
                Reply: the action dict (json_numpy arrays, or lists with return_lists / ?format=list);
                per-stage times in the `Server-Timing` header.
GET  /health    {"status": "healthy", "model": "GR00T"}   (no token needed: load balancers)
GET  /metadata  protocol version + model card (token needed)
POST /reset     {"options": {...}}                         (token needed)
GET  /modality_config                                      (token needed)
Tokens: `Authorization: Bearer <token>`, `X-API-Token`, or "api_token" in the body; compared in
constant time. Bodies above max_message_bytes get 413. Binding rules as for ZeroMQ.
The policy runs on one worker thread, so /health answers during an action.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from gr00t_exp_client import json_codec
from gr00t_exp_client.memtune import tune_malloc
from gr00t_exp_client.wire import WireError

from gr00t_exp.serve.base import BasePolicy
from gr00t_exp.serve.security import TokenChecker, check_bind
from gr00t_exp.serve.service import PolicyService, RequestError

log = logging.getLogger(__name__)

_STATUS = {"bad_request": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "too_large": 413,
           "busy": 503, "internal": 500}  # fmt: skip


def build_app(policy: BasePolicy, api_token: str | None = None, max_message_bytes: int = 64 << 20):
    app = FastAPI(title="gr00t_exp policy server", docs_url=None, redoc_url=None, openapi_url=None)
    token = TokenChecker(api_token)
    service = PolicyService(
        policy, auth_token=token.required, max_message_bytes=max_message_bytes, transport="http"
    )
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-worker")
    app.state.worker = worker

    def err(message: str, code: str) -> Response:
        return JSONResponse({"error": message, "code": code, "detail": message}, status_code=_STATUS[code])

    def header_token(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.headers.get("x-api-token")

    def authorized(request: Request, body_token: Any = None) -> bool:
        return token.check(header_token(request) or body_token)

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

    async def in_worker(fn):
        return await asyncio.get_running_loop().run_in_executor(worker, fn)

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
        return {k: v.as_dict() for k, v in policy.get_modality_config().items()}

    @app.post("/reset")
    async def reset(request: Request):
        try:
            payload = await parse_json(request)
            if not authorized(request, payload.get("api_token")):
                return err("Unauthorized: Invalid API token", "unauthorized")
            reply, _ = await in_worker(lambda: service.handle("reset", {"options": payload.get("options")}))
            return Response(json_codec.dumps(reply), media_type="application/json")
        except RequestError as e:
            return err(str(e), e.code)

    @app.post("/act")
    async def act(request: Request):
        t0 = time.perf_counter()
        try:
            payload = await parse_json(request)
            if not authorized(request, payload.get("api_token")):
                return err("Unauthorized: Invalid API token", "unauthorized")
            if "encoded" in payload:
                enc = payload["encoded"]
                if not isinstance(enc, str):
                    raise RequestError("'encoded' must be a JSON string")
                try:
                    observation = json_codec.loads(enc)
                except WireError as e:
                    raise RequestError(f"cannot decode 'encoded': {e}") from None
            elif "observation" in payload:
                observation = payload["observation"]
            else:
                raise RequestError("request body needs 'observation' (or 'encoded')")
            lists = bool(payload.get("return_lists")) or request.query_params.get("format") == "list"
            data = {"observation": observation, "options": payload.get("options")}
            decode_ms = (time.perf_counter() - t0) * 1e3
            (action, info), _ = await in_worker(lambda: service.handle("get_action", data))
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
        max_message_bytes: int = 64 << 20,
    ):
        check_bind(host, api_token, allow_insecure_remote)
        self.host, self.port = host, int(port)
        self.app = build_app(policy, api_token, max_message_bytes)
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
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
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
