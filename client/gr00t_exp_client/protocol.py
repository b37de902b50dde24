"""Facts of the policy protocol that both sides (servers and robot clients) must agree on.

Standard library only: the robot client imports it without torch or omegaconf.
"""

from __future__ import annotations

import os

# Largest request a server accepts (ZeroMQ MAXMSGSIZE, HTTP 413): a G1 observation with two
# 480x640 views is 1.8 MB, so 64 MiB leaves room for batches without letting a client exhaust memory.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Environment variable holding the API token, so it stays out of config files and logs.
TOKEN_ENV = "GR00T_EXP_API_TOKEN"


def resolve_token(configured: str | None) -> str | None:
    """The configured token, else $GR00T_EXP_API_TOKEN, else None (empty strings count as None)."""
    token = configured if configured else os.environ.get(TOKEN_ENV)
    return token or None
