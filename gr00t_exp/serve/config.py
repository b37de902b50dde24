"""Structured-config schema of the `deploy` group's serving part (docs/serving.md).

The `deploy` node itself (serving + robot) is assembled in gr00t_exp/config/schema.py, so serving
never imports the robot package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from gr00t_exp_client.protocol import MAX_MESSAGE_BYTES


@dataclass
class ServerConfig:
    """Every field but `kind` is a keyword of the chosen server class (gr00t_exp/serve/run.py:build_server)."""

    kind: str = "zmq"  # zmq | http
    host: str = "127.0.0.1"
    port: int = 5555
    # Also read from $GR00T_EXP_API_TOKEN (keeps it out of config files and logs).
    api_token: Optional[str] = None
    # Binding a non-loopback interface without a token must be asked for explicitly.
    allow_insecure_remote: bool = False
    # CurveZMQ: the server's `.key_secret` certificate (zmq.auth.create_certificates); with
    # curve_authorized_keys_dir only clients whose public keys are in that directory may connect.
    curve_secret_key_file: Optional[str] = None
    curve_authorized_keys_dir: Optional[str] = None
    max_message_bytes: int = MAX_MESSAGE_BYTES
    enable_kill: bool = False
    # Requests waiting for the policy worker beyond this are answered "busy".
    max_queue: int = 64
    # Protocol generation spoken (gr00t_exp/serve/protocol.py): auto | n1.5 | n1.6; auto follows
    # the checkpoint's model_type (a replay speaks n1.6, as upstream's run_gr00t_server.py).
    protocol: str = "auto"
    # Observations with more samples are refused with bad_request (batch 0 always is).
    max_batch: int = 64
    # A queued request not started within this (or within the client's own `timeout_ms`, if
    # shorter) is dropped unrun: abandoned requests cannot delay live clients.
    request_timeout_ms: int = 10000
    # zmq: stalled ZMTP handshakes are closed after this (libzmq's default is 30 s).
    handshake_ivl_ms: int = 2000
    # zmq: array/map entries one request may declare (checked before decoding).
    max_decode_entries: int = 10000
    # http: Host header names accepted besides loopback names and the bound address ("*" = any),
    # Origin values accepted (browsers; none by default), open connections, JSON '['+'{' count.
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    max_connections: int = 64
    max_json_containers: int = 1000000


@dataclass
class ClientConfig:
    """Where a remote client (the robot runner) finds the server: each field is a `PolicyClient`
    keyword (gr00t_exp/serve/client.py:policy_client passes them all)."""

    host: str = "127.0.0.1"
    port: int = 5555
    api_token: Optional[str] = None  # null = $GR00T_EXP_API_TOKEN
    # <= deploy.robot.safety.policy_timeout_s (3 s), which the robot runner enforces; 1500 leaves one retry.
    timeout_ms: int = 1500
    retries: int = 2  # extra attempts of idempotent calls (ping, metadata, get_modality_config)
    curve_server_key_file: Optional[str] = None  # the server's public `server.key`
    curve_client_key_file: Optional[str] = None  # this client's `.key_secret` (server allow-list)


@dataclass
class PolicyConfig(ClientConfig):
    """What the server (or a local robot run) serves; the client fields (inherited, so the keys stay
    `deploy.policy.host` ...) say where the robot finds it."""

    kind: str = "gr00t"  # gr00t | replay | constant
    checkpoint: Optional[str] = None  # gr00t: hub-layout export dir (with experiment_cfg/metadata.json)
    embodiment_tag: Optional[str] = None  # null = embodiment.embodiment_tag
    # gr00t: refuse to serve when the embodiment config differs from the checkpoint's metadata.
    check_embodiment: bool = True
    denoising_steps: int = 4
    device: str = "auto"
    strict: bool = True  # reject unknown observation keys (and float64 nested states)
    # replay: dataset root (null = data.sources[0].path), episode, steps advanced per call
    dataset: Optional[str] = None
    episode_index: int = 0
    execution_horizon: Optional[int] = None
    # constant: image size (H, W) expected per view (null = any)
    image_size: Optional[list[int]] = None
    # gr00t fast path (serve/fast_path.py, docs/serving.md): auto = cudagraph on CUDA, off on CPU;
    # off | cudagraph (eager kernels in CUDA graphs) | compile (Inductor kernels in CUDA graphs).
    fast_path: str = "auto"
    autocast: Optional[bool] = None  # bf16 autocast; null = on with CUDA
    gpu_preprocess: Optional[bool] = None  # crop/resize/normalise images on the device; null = on with CUDA
    # Batch sizes captured at start-up (with the embodiment's views); others on first use.
    warmup_batch_sizes: list[int] = field(default_factory=lambda: [1])
    # Serve the `model` config's architecture with random weights and unit statistics, no
    # checkpoint needed (benchmarks: mode=bench bench=serve; the actions mean nothing).
    random_init: bool = False
