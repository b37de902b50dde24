"""A client written from upstream GR00T's documented wire format only (gr00t_reference.md §6.2, §6.4).

Independent of gr00t_exp.serve: plain zmq REQ + msgpack, arrays as np.save bytes under
"__ndarray_class__", ModalityConfig as JSON under "__ModalityConfig_class__".
"""

from __future__ import annotations

import io
import json

import msgpack
import numpy as np
import zmq


def _encode_hook(obj):
    if isinstance(obj, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": buf.getvalue()}
    return obj


def _decode_hook(obj):
    if "__ndarray_class__" in obj:
        return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
    if "__ModalityConfig_class__" in obj:
        return {"ModalityConfig": json.loads(obj["as_json"])}
    return obj


class UpstreamStyleClient:
    def __init__(self, port: int, host: str = "127.0.0.1", api_token: str | None = None, timeout_ms=10000):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"tcp://{host}:{port}")
        self.api_token = api_token

    def call_endpoint(self, endpoint: str, data=None, requires_input: bool = True):
        request = {"endpoint": endpoint}
        if requires_input:
            request["data"] = data
        if self.api_token:
            request["api_token"] = self.api_token
        self.sock.send(msgpack.packb(request, default=_encode_hook))
        reply = msgpack.unpackb(self.sock.recv(), object_hook=_decode_hook)
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"Server error: {reply['error']}")
        return reply

    def send_raw(self, payload: bytes):
        self.sock.send(payload)
        return msgpack.unpackb(self.sock.recv(), object_hook=_decode_hook)

    # N1.5 RobotInferenceClient
    def ping(self):
        return self.call_endpoint("ping", requires_input=False)

    def get_action(self, observations: dict) -> dict:
        return self.call_endpoint("get_action", observations)

    def get_modality_config(self):
        return self.call_endpoint("get_modality_config", requires_input=False)

    # N1.6 PolicyClient
    def get_action_n16(self, observation: dict, options=None):
        action, info = self.call_endpoint("get_action", {"observation": observation, "options": options})
        return action, info

    def reset_n16(self, options=None):
        return self.call_endpoint("reset", {"options": options})

    def close(self):
        self.sock.close(0)
        self.ctx.term()
