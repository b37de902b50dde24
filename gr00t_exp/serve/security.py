"""Serving security rules: where a server may bind, API tokens, CurveZMQ key files.

Rules (docs/serving.md):
- a server binds 127.0.0.1 by default;
- binding any other interface requires an API token of at least MIN_TOKEN_CHARS characters
  (or CurveZMQ with an allow-list of client keys), unless `allow_insecure_remote=true`;
- tokens are compared in constant time (hmac.compare_digest).
Standard library and the torch-free gr00t_exp_client only.
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

# One definition of the token variable and its fallback, shared with the robot-side client.
from gr00t_exp_client.protocol import TOKEN_ENV, resolve_token

__all__ = [
    "MIN_TOKEN_CHARS",
    "TOKEN_ENV",
    "InsecureBindError",
    "TokenChecker",
    "check_bind",
    "is_loopback",
    "load_curve_keypair",
    "resolve_token",
]

MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class InsecureBindError(ValueError):
    """Binding would expose the policy without authentication."""


def is_loopback(host: str) -> bool:
    """True only for loopback addresses/names; wildcards ('*', '0.0.0.0', '::', '') are not."""
    h = (host or "").strip().strip("[]").lower()
    if h in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(
    host: str,
    api_token: str | None,
    allow_insecure_remote: bool = False,
    curve_authenticated: bool = False,
) -> None:
    """Raise InsecureBindError if binding `host` would expose an unauthenticated policy."""
    if is_loopback(host):
        return
    if api_token is not None and len(api_token) < MIN_TOKEN_CHARS:
        raise InsecureBindError(
            f"deploy.server.api_token is {len(api_token)} characters; binding {host!r} needs at least "
            f"{MIN_TOKEN_CHARS}. Generate one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    if api_token or curve_authenticated or allow_insecure_remote:
        return
    raise InsecureBindError(
        f"deploy.server.host={host!r} is not a loopback address and no API token is set. "
        f"Set deploy.server.api_token (or ${TOKEN_ENV}), or configure CurveZMQ client keys "
        "(deploy.server.curve_authorized_keys_dir), or explicitly accept an open port with "
        "deploy.server.allow_insecure_remote=true."
    )


class TokenChecker:
    """Constant-time API-token check; with no token configured every request passes."""

    def __init__(self, token: str | None):
        self._token = token.encode("utf-8") if token else None

    @property
    def required(self) -> bool:
        return self._token is not None

    def check(self, provided: object) -> bool:
        if self._token is None:
            return True
        if isinstance(provided, str):
            provided_b = provided.encode("utf-8", "surrogatepass")
        elif isinstance(provided, bytes):
            provided_b = provided
        else:
            # Compare against a dummy so a missing token takes the same time as a wrong one.
            hmac.compare_digest(self._token, self._token)
            return False
        return hmac.compare_digest(provided_b, self._token)


def load_curve_keypair(path: str | Path) -> tuple[bytes, bytes | None]:
    """(public, secret) Z85 keys from a certificate written by zmq.auth.create_certificates."""
    import zmq.auth

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"CurveZMQ key file {p} does not exist; create a pair with "
            "python -c \"import zmq.auth; zmq.auth.create_certificates('<dir>', 'server')\""
        )
    public, secret = zmq.auth.load_certificate(str(p))
    return public, secret
