"""HTTP client for the FastAPI server (standard library + numpy only): the PolicyClient methods.

Arrays are sent json_numpy-encoded; timeouts apply to connect and read; only idempotent GETs
(health, metadata, modality config) are retried.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from gr00t_exp_client.errors import PolicyServerError, PolicyTimeoutError


def _enc(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {
            "__numpy__": base64.b64encode(a.tobytes()).decode("ascii"),
            "dtype": a.dtype.str,
            "shape": list(a.shape),
        }
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def _dec(d: dict) -> Any:
    if "__numpy__" in d:
        dtype = np.dtype(d["dtype"])
        if dtype.hasobject or dtype.kind not in "biufU":
            raise ValueError(f"refusing array dtype {dtype}")
        return np.frombuffer(base64.b64decode(d["__numpy__"]), dtype).reshape(d["shape"])
    return d


class HttpPolicyClient:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 8000, timeout_ms: int = 5000, api_token: str | None = None,
        retries: int = 2,
    ):  # fmt: skip
        self.base = f"http://{'[' + host + ']' if ':' in host else host}:{int(port)}"
        self.timeout_s = timeout_ms / 1000.0
        self.api_token = api_token
        self.retries = int(retries)

    def _request(self, method: str, path: str, body: Any = None, idempotent: bool = False) -> Any:
        data = json.dumps(body, default=_enc).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.api_token:
            headers["Authorization"] = f"Bearer {self.api_token}"
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read(), object_hook=_dec), resp.headers
            except urllib.error.HTTPError as e:
                try:
                    err = json.loads(e.read())
                except ValueError:
                    err = {"error": f"HTTP {e.code}"}
                raise PolicyServerError(str(err.get("error", err)), err.get("code")) from None
            except (
                OSError,
                http.client.HTTPException,
            ) as e:  # timeouts, refused, reset (URLError is an OSError)
                if attempt + 1 == attempts:
                    raise PolicyTimeoutError(f"{method} {self.base}{path}: {e}") from None
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        try:
            return self._request("GET", "/health", idempotent=True)[0].get("status") == "healthy"
        except (PolicyTimeoutError, PolicyServerError):
            return False

    def metadata(self) -> dict:
        return self._request("GET", "/metadata", idempotent=True)[0]

    def get_modality_config(self) -> dict:
        return self._request("GET", "/modality_config", idempotent=True)[0]

    def reset(self, options: dict | None = None) -> dict:
        return self._request("POST", "/reset", {"options": options})[0]

    def get_action_with_info(self, observation: dict, options: dict | None = None) -> tuple[dict, dict]:
        t0 = time.perf_counter()
        action, headers = self._request("POST", "/act", {"observation": observation, "options": options})
        timing = {}
        for part in (headers.get("Server-Timing") or "").split(","):
            name, _, dur = part.strip().partition(";dur=")
            if dur:
                timing[name] = float(dur)
        timing["round_trip"] = (time.perf_counter() - t0) * 1e3
        return action, {"timing_ms": timing}

    def get_action(self, observation: dict, options: dict | None = None) -> dict:
        return self.get_action_with_info(observation, options)[0]
