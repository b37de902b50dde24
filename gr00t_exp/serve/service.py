"""Transport-independent request handling shared by the ZeroMQ and HTTP servers.

`PolicyService.handle(endpoint, data)` returns the reply object (or raises `RequestError` with a
code). Endpoints follow upstream (docs/upstream.md "Wire formats") plus `metadata` (handshake).
Errors become `{"error": <message>, "code": <code>}`; tracebacks stay in the server log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gr00t_exp_client.wire import WireError

from gr00t_exp import __version__
from gr00t_exp.serve.base import BasePolicy
from gr00t_exp.serve.observation import ObservationError
from gr00t_exp.serve.protocol import resolve_protocol

log = logging.getLogger(__name__)

PROTOCOL = "gr00t_exp.serve"
PROTOCOL_VERSION = "1.0"
# Endpoints answered by the I/O thread without waiting for the policy worker.
FAST_ENDPOINTS = frozenset({"ping", "metadata", "handshake", "get_modality_config", "kill"})
SLOW_ENDPOINTS = frozenset({"get_action", "reset"})
ENDPOINTS = sorted(FAST_ENDPOINTS | SLOW_ENDPOINTS)
HTTP_ENDPOINTS = ["POST /act", "POST /reset", "GET /health", "GET /metadata", "GET /modality_config"]


class RequestError(Exception):
    def __init__(self, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.code = code


def error_reply(message: str, code: str) -> dict[str, str]:
    return {"error": message, "code": code}


def split_get_action(data: Any) -> tuple[Any, dict | None, bool]:
    """(observation, options, n16_style). N1.6 sends {"observation": ..., "options": ...}."""
    if isinstance(data, dict) and "observation" in data and set(data) <= {"observation", "options"}:
        options = data.get("options")
        if options is not None and not isinstance(options, dict):
            raise RequestError(f"options must be a dict or null, got {type(options).__name__}")
        return data["observation"], options, True
    return data, None, False


class PolicyService:
    def __init__(
        self,
        policy: BasePolicy,
        *,
        auth_token: bool = False,
        curve: bool = False,
        enable_kill: bool = False,
        max_message_bytes: int | None = None,
        transport: str = "zmq",
        protocol: str = "auto",
        max_batch: int | None = None,
    ):
        self.policy = policy
        self.enable_kill = enable_kill
        self.transport = transport
        self.kill_requested = False
        self.generation = resolve_protocol(protocol, policy)
        if max_batch is not None:
            if max_batch < 1:
                raise ValueError(f"deploy.server.max_batch must be >= 1, got {max_batch}")
            policy.max_batch = int(max_batch)
        self._server_info = {
            "transport": transport,
            "protocol_generation": self.generation,
            "max_batch": policy.max_batch,
            "auth": {"api_token": auth_token, "curve": curve},
            "kill_enabled": enable_kill,
            "max_message_bytes": max_message_bytes,
            "server_version": __version__,
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "protocol_version": PROTOCOL_VERSION,
            "wire": "msgpack+npy",
            "endpoints": HTTP_ENDPOINTS if self.transport == "http" else ENDPOINTS,
            "model_card": {**self.policy.model_card(), "protocol_generation": self.generation},
            **self._server_info,
        }

    def handle(self, endpoint: Any, data: Any) -> tuple[Any, dict[str, float]]:
        """Run one endpoint. Returns (reply, timing_ms); raises RequestError."""
        if endpoint == "ping":
            return {"status": "ok", "message": "Server is running"}, {}
        if endpoint in ("metadata", "handshake"):
            return self.metadata(), {}
        if endpoint == "get_modality_config":
            return self.policy.get_modality_config(self.generation), {}
        if endpoint == "kill":
            if not self.enable_kill:
                raise RequestError(
                    "kill is disabled on this server (deploy.server.enable_kill=false)", "forbidden"
                )
            self.kill_requested = True
            return {"status": "ok", "message": "Server is shutting down"}, {}
        if endpoint == "reset":
            options = data.get("options", data) if isinstance(data, dict) else data
            if options is not None and not isinstance(options, dict):
                raise RequestError(f"reset options must be a dict, got {type(options).__name__}")
            return self._guard(lambda: self.policy.reset(options)), {}
        if endpoint == "get_action":
            observation, options, n16 = split_get_action(data)
            action, info = self._guard(lambda: self.policy.get_action_with_info(observation, options))
            return ([action, info] if n16 else action), info.get("timing_ms", {})
        if not isinstance(endpoint, str):
            raise RequestError(f"'endpoint' must be a string, one of: {', '.join(ENDPOINTS)}")
        raise RequestError(f"unknown endpoint; endpoints: {', '.join(ENDPOINTS)}")

    @staticmethod
    def _guard(fn):
        try:
            return fn()
        except RequestError:
            raise
        except (ObservationError, WireError) as e:
            raise RequestError(str(e), "bad_request") from None
        except (ValueError, KeyError, TypeError) as e:
            raise RequestError(f"{type(e).__name__}: {e}", "bad_request") from None
        except Exception as e:
            log.exception("policy failed")
            raise RequestError(f"internal error: {type(e).__name__}: {e}", "internal") from None


def now_ms() -> float:
    return time.perf_counter() * 1e3
