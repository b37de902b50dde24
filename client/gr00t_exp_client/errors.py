"""Errors a policy client raises (shared by the ZeroMQ and HTTP clients)."""

from __future__ import annotations


class PolicyServerError(RuntimeError):
    """The server answered with {"error": ...}."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


class PolicyTimeoutError(TimeoutError):
    """No reply within timeout_ms (the socket has been reset; the client stays usable)."""
