"""Structured-config schema of the `deploy` group's serving part."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class ServerConfig:
    kind: str = "zmq"  # zmq | http
    host: str = "127.0.0.1"
    port: int = 5555
    api_token: Optional[str] = None
    # Binding a non-loopback interface without a token must be asked for explicitly.
    allow_insecure_remote: bool = False
    curve_secret_key_file: Optional[str] = None
    max_message_bytes: int = 64 * 1024 * 1024
    enable_kill: bool = False


@dataclass
class PolicyConfig:
    # What the server (or a local robot run) serves: gr00t | replay
    kind: str = "gr00t"
    checkpoint: Optional[str] = None
    episode_index: int = 0
    denoising_steps: int = 4
    device: str = "auto"
    # Where a remote client finds the server.
    host: str = "127.0.0.1"
    port: int = 5555
    api_token: Optional[str] = None
    timeout_ms: int = 5000
    curve_server_key_file: Optional[str] = None


@dataclass
class DeployConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    # G1 runner settings (see gr00t_exp/robot/config.py); free-form until typed there.
    robot: dict[str, Any] = field(default_factory=dict)
    record: bool = False
