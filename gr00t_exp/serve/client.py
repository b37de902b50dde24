"""The robot-side clients, re-exported from the torch-free `gr00t_exp_client` distribution (client/),
and the one place a `PolicyClient` is built from config."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from gr00t_exp_client import HttpPolicyClient, PolicyClient, PolicyServerError, PolicyTimeoutError
from gr00t_exp_client.protocol import resolve_token

from gr00t_exp.serve.config import ClientConfig

__all__ = [
    "HttpPolicyClient",
    "PolicyClient",
    "PolicyServerError",
    "PolicyTimeoutError",
    "client_kwargs",
    "policy_client",
]


def client_kwargs(node: Any) -> dict[str, Any]:
    """Every `ClientConfig` field of `node` (e.g. cfg.deploy.policy) as a PolicyClient keyword; the
    token falls back to $GR00T_EXP_API_TOKEN as on the server side."""
    kwargs = {f.name: getattr(node, f.name) for f in fields(ClientConfig)}
    kwargs["api_token"] = resolve_token(kwargs["api_token"])
    return kwargs


def policy_client(node: Any) -> PolicyClient:
    """A connected PolicyClient configured by every client field of `node` (deploy.policy)."""
    return PolicyClient(**client_kwargs(node))
