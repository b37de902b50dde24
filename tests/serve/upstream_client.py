"""Clients written from upstream GR00T's documented wire formats only (docs/upstream.md "Wire formats").

Independent of gr00t_exp (no import from it): plain zmq REQ + msgpack with upstream's numpy hooks
(`np.save` bytes under "__ndarray_class__"), msgpack's default unpack settings (str map keys
only), and each generation's own `ModalityConfig` decoding:
- N1.5 (`RobotInferenceClient`): `ModalityConfig.model_validate_json(as_json)`: as_json must be
  JSON *text*; pydantic keeps delta_indices / modality_keys and ignores other fields;
- N1.6 (`PolicyClient`): `ModalityConfig(**as_json)`: as_json must be a *map* whose keys are the
  dataclass's fields (an unknown one is a TypeError), action_configs parsed by enum name.
The HTTP client is upstream N1.5's: `POST /act` with `{"observation": ...}` or
`{"encoded": <json text>}`, arrays in json_numpy's form, Content-Type application/json, and no
way to send a token.
"""

from __future__ import annotations

import base64
import enum
import http.client
import io
import json
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import zmq


# -- N1.5 / N1.6 ModalityConfig as each generation's client rebuilds it ----------------------
@dataclass
class N15ModalityConfig:
    delta_indices: list[int]
    modality_keys: list[str]

    @classmethod
    def model_validate_json(cls, text: Any) -> N15ModalityConfig:
        if not isinstance(text, (str, bytes)):  # pydantic: "JSON input should be string, bytes"
            raise TypeError(f"model_validate_json needs JSON text, got {type(text).__name__}")
        d = json.loads(text)
        if not all(isinstance(i, int) for i in d["delta_indices"]):
            raise ValueError("delta_indices must be integers")
        if not all(isinstance(k, str) for k in d["modality_keys"]):
            raise ValueError("modality_keys must be strings")
        return cls(list(d["delta_indices"]), list(d["modality_keys"]))


class ActionRepresentation(enum.Enum):
    RELATIVE = "relative"
    DELTA = "delta"
    ABSOLUTE = "absolute"


class ActionType(enum.Enum):
    EEF = "eef"
    NON_EEF = "non_eef"


class ActionFormat(enum.Enum):
    DEFAULT = "default"
    XYZ_ROT6D = "xyz+rot6d"
    XYZ_ROTVEC = "xyz+rotvec"


@dataclass
class ActionConfig:
    rep: ActionRepresentation
    type: ActionType
    format: ActionFormat
    state_key: str | None = None


@dataclass
class N16ModalityConfig:
    delta_indices: list[int]
    modality_keys: list[str]
    sin_cos_embedding_keys: list[str] | None = None
    mean_std_embedding_keys: list[str] | None = None
    action_configs: list[ActionConfig] | None = None

    def __post_init__(self):
        if self.action_configs is not None:
            if len(self.action_configs) != len(self.modality_keys):
                raise ValueError("action_configs must have one entry per modality key")
            self.action_configs = [
                ActionConfig(
                    rep=ActionRepresentation[c["rep"]],
                    type=ActionType[c["type"]],
                    format=ActionFormat[c["format"]],
                    state_key=c.get("state_key"),
                )
                if isinstance(c, dict)
                else c
                for c in self.action_configs
            ]


# -- msgpack hooks ------------------------------------------------------------------------
def _encode_hook(obj):
    if isinstance(obj, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": buf.getvalue()}
    return obj


def _decode_hook_n15(obj):
    if "__ndarray_class__" in obj:
        return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
    if "__ModalityConfig_class__" in obj:
        return N15ModalityConfig.model_validate_json(obj["as_json"])
    return obj


def _decode_hook_n16(obj):
    if not isinstance(obj, dict):
        return obj
    if "__ModalityConfig_class__" in obj:
        return N16ModalityConfig(**obj["as_json"])
    if "__ndarray_class__" in obj:
        return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
    return obj


def encode_request(endpoint: str, data: Any = None, requires_input: bool = True, api_token=None) -> bytes:
    """The request bytes upstream's clients send."""
    request: dict[str, Any] = {"endpoint": endpoint}
    if requires_input:
        request["data"] = data
    if api_token:
        request["api_token"] = api_token
    return msgpack.packb(request, default=_encode_hook)


class UpstreamStyleClient:
    """`generation="n1.5"`: RobotInferenceClient; `"n1.6"`: PolicyClient."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        api_token: str | None = None,
        timeout_ms=10000,
        generation: str = "n1.5",
    ):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"tcp://{host}:{port}")
        self.api_token = api_token
        self.hook = _decode_hook_n16 if generation == "n1.6" else _decode_hook_n15

    def call_endpoint(self, endpoint: str, data=None, requires_input: bool = True):
        self.sock.send(encode_request(endpoint, data, requires_input, self.api_token))
        message = self.sock.recv()
        if message == b"ERROR":
            raise RuntimeError("Server error. Make sure we are running the correct policy server.")
        reply = msgpack.unpackb(message, object_hook=self.hook)
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"Server error: {reply['error']}")
        return reply

    def send_raw(self, payload: bytes):
        self.sock.send(payload)
        return msgpack.unpackb(self.sock.recv(), object_hook=self.hook)

    def ping(self):
        return self.call_endpoint("ping", requires_input=False)

    def get_modality_config(self):
        return self.call_endpoint("get_modality_config", requires_input=False)

    # N1.5 RobotInferenceClient
    def get_action(self, observations: dict) -> dict:
        return self.call_endpoint("get_action", observations)

    # N1.6 PolicyClient
    def get_action_n16(self, observation: dict, options=None):
        return tuple(self.call_endpoint("get_action", {"observation": observation, "options": options}))

    def reset_n16(self, options=None):
        return self.call_endpoint("reset", {"options": options})

    def close(self):
        self.sock.close(0)
        self.ctx.term()


# -- N1.5 HTTP client (json_numpy) ------------------------------------------------------------
def _json_numpy_default(obj):
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {
            "__numpy__": base64.b64encode(arr.tobytes()).decode(),
            "dtype": arr.dtype.str,
            "shape": arr.shape,
        }
    raise TypeError(type(obj).__name__)


def _json_numpy_hook(obj):
    if "__numpy__" in obj:
        raw = base64.b64decode(obj["__numpy__"])
        return np.frombuffer(raw, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"])
    return obj


class UpstreamHttpClient:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout_s: float = 10.0):
        self.host, self.port, self.timeout_s = host, port, timeout_s

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def get_action(self, observation: dict, encoded: bool = False) -> dict:
        payload = {"observation": observation}
        text = json.dumps(payload, default=_json_numpy_default)
        if encoded:
            text = json.dumps({"encoded": text})
        status, body = self.request("POST", "/act", text.encode())
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        return json.loads(body, object_hook=_json_numpy_hook)

    def health(self) -> dict:
        status, body = self.request("GET", "/health")
        assert status == 200
        return json.loads(body)
