"""Robot-side ZeroMQ client: numpy + pyzmq + msgpack only (no torch), the `gr00t_exp_client` distribution.

`PolicyClient` has the policy's methods (get_action, get_modality_config, reset), so a robot
program can swap a local policy for a remote one. Unlike upstream's client, its timeouts are real
(send and receive), a timed-out REQ socket is closed and recreated (a REQ socket that missed its
reply cannot send again), and only idempotent calls (ping, metadata, get_modality_config) are
retried. Server errors raise `PolicyServerError` with the server's message and code.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from gr00t_exp_client import wire
from gr00t_exp_client.errors import PolicyServerError, PolicyTimeoutError
from gr00t_exp_client.memtune import tune_malloc


class PolicyClient:
    """Client of a gr00t_exp (or upstream GR00T) ZeroMQ policy server."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5555,
        timeout_ms: int = 5000,
        api_token: str | None = None,
        retries: int = 2,
        curve_server_key_file: str | Path | None = None,
        curve_client_key_file: str | Path | None = None,
        tune_memory: bool = True,
    ):
        """retries: extra attempts for idempotent calls after a timeout (never for get_action/reset).

        curve_server_key_file: the server's public key (`server.key`) to encrypt with CurveZMQ;
        curve_client_key_file: this client's `.key_secret` when the server allow-lists clients
        (an ephemeral key pair is used otherwise).
        tune_memory: raise glibc's mmap threshold so large messages do not page-fault each time.
        """
        if tune_memory:
            tune_malloc()
        self.host, self.port = host, int(port)
        self.timeout_ms = int(timeout_ms)
        self.api_token = api_token
        self.retries = int(retries)
        self._curve: tuple[bytes, bytes, bytes] | None = None
        if curve_server_key_file:
            server_public = _load_key(curve_server_key_file, secret=False)[0]
            if curve_client_key_file:
                public, secret = _load_key(curve_client_key_file, secret=True)
            else:
                public, secret = zmq.curve_keypair()
            self._curve = (server_public, public, secret)
        self._ctx = zmq.Context()
        self._sock: zmq.Socket | None = None
        self._connect()

    # -- socket management -----------------------------------------------------------------
    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        if self._curve:
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self._curve
        host = "[" + self.host + "]" if ":" in self.host else self.host
        sock.connect(f"tcp://{host}:{self.port}")
        self._sock = sock

    def _reset_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        self._connect()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        self._ctx.term()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- calls -----------------------------------------------------------------------------
    def call(self, endpoint: str, data: Any = None, *, idempotent: bool = False) -> Any:
        """One request/reply; raises PolicyTimeoutError or PolicyServerError."""
        request: dict[str, Any] = {"endpoint": endpoint}
        if data is not None:
            request["data"] = data
        if self.api_token is not None:
            request["api_token"] = self.api_token
        # The server drops a queued request unrun once this client would have stopped waiting.
        request["timeout_ms"] = self.timeout_ms
        payload = wire.encode(request)
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            if self._sock is None:
                self._connect()
            try:
                self._sock.send(payload, copy=False)
                reply = self._sock.recv(copy=False)
                break
            except zmq.Again:
                # A REQ socket that missed its reply is stuck in the "receive" state: recreate it.
                self._reset_socket()
                if attempt + 1 == attempts:
                    raise PolicyTimeoutError(
                        f"no reply from tcp://{self.host}:{self.port} to '{endpoint}' within "
                        f"{self.timeout_ms} ms" + (f" ({attempts} attempts)" if attempts > 1 else "")
                    ) from None
        result = wire.decode(reply.buffer)
        if isinstance(result, dict) and "error" in result:
            raise PolicyServerError(str(result["error"]), result.get("code"))
        return result

    def ping(self) -> bool:
        """True when the server answers (retried); False on timeout."""
        try:
            return self.call("ping", idempotent=True).get("status") == "ok"
        except PolicyTimeoutError:
            return False

    def metadata(self) -> dict:
        """Protocol version, auth, limits and the model card of the served policy."""
        return self.call("metadata", idempotent=True)

    def get_modality_config(self) -> dict:
        reply = self.call("get_modality_config", idempotent=True)
        return {k: (v.as_dict() if isinstance(v, wire.ModalityConfigWire) else v) for k, v in reply.items()}

    def reset(self, options: dict | None = None) -> dict:
        return self.call("reset", {"options": options})

    def get_action_with_info(
        self, observation: dict, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict]:
        """(actions, info); info["timing_ms"] has the server's per-stage times and "round_trip"."""
        t0 = time.perf_counter()
        action, info = self.call("get_action", {"observation": observation, "options": options})
        info = dict(info)
        info.setdefault("timing_ms", {})["round_trip"] = (time.perf_counter() - t0) * 1e3
        return action, info

    def get_action(self, observation: dict, options: dict | None = None) -> dict[str, np.ndarray]:
        return self.get_action_with_info(observation, options)[0]

    def kill(self) -> dict:
        """Ask the server to stop (refused unless the server enables it)."""
        return self.call("kill")


def _load_key(path: str | Path, secret: bool) -> tuple[bytes, bytes]:
    import zmq.auth

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CurveZMQ key file {p} not found")
    public, secret_key = zmq.auth.load_certificate(str(p))
    if secret and not secret_key:
        raise ValueError(f"{p} holds no secret key (pass the .key_secret file)")
    return public, secret_key
