"""Paths and loaders of the reference fixture (refdata/gr00t_n15), shared by the model tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REFDATA = Path(os.environ.get("GR00T_REFDATA", "/work/shared/refdata/gr00t_n15"))
TINY = REFDATA / "tiny"

needs_refdata = pytest.mark.skipif(not (TINY / "model.safetensors").is_file(), reason=f"no fixture at {TINY}")


def load(name: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(TINY / f"{name}.safetensors"))


def max_diff(a, b) -> float:
    return (a.detach().float() - b.detach().float()).abs().max().item()
