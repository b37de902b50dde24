"""The one way tests find reference data (../shared: refdata, datasets, docs).

The root is `$GR00T_EXP_SHARED`, else `shared/` beside the repository. A missing fixture skips the
test with the path it looked for; under `CI=true` it fails instead, so a green CI run always means
the parity, dataset and processor tests ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """Where the reference data lives (nothing is checked)."""
    return Path(os.environ.get("GR00T_EXP_SHARED", REPO_ROOT.parent / "shared"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_path(*parts: str) -> Path:
    """`<shared root>/<parts...>`, which must exist: skips the calling test when it does not
    (fails under CI=true). Call it from a test or a fixture, not at import time."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        msg = f"reference fixture not found: {path} (set GR00T_EXP_SHARED to the folder holding refdata/ and datasets/)"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return path
