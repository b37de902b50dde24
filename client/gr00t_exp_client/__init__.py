"""gr00t_exp's robot-side policy clients: numpy, pyzmq and msgpack only (no torch).

`PolicyClient` (ZeroMQ) and `HttpPolicyClient` speak to `python run.py mode=serve` and to upstream
GR00T servers; `wire` / `json_codec` are the codecs both sides share.
"""

from gr00t_exp_client.errors import PolicyServerError, PolicyTimeoutError
from gr00t_exp_client.http_client import HttpPolicyClient
from gr00t_exp_client.zmq_client import PolicyClient

__all__ = ["HttpPolicyClient", "PolicyClient", "PolicyServerError", "PolicyTimeoutError"]
__version__ = "0.1.0"
