"""Structured-config schema of the `deploy` group's serving part (docs/serving.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from gr00t_exp.robot.config import RobotConfig


@dataclass
class ServerConfig:
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
    max_message_bytes: int = 64 * 1024 * 1024
    enable_kill: bool = False
    # Requests waiting for the policy worker beyond this are answered "busy".
    max_queue: int = 64


@dataclass
class PolicyConfig:
    # What the server (or a local robot run) serves: gr00t | replay | constant
    kind: str = "gr00t"
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
    # Where a remote client finds the server.
    host: str = "127.0.0.1"
    port: int = 5555
    api_token: Optional[str] = None
    timeout_ms: int = 5000
    retries: int = 2
    curve_server_key_file: Optional[str] = None
    curve_client_key_file: Optional[str] = None


@dataclass
class DeployConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)  # G1 runner (gr00t_exp/robot/config.py)
    record: bool = False
