"""Paths and loaders of the reference fixture (refdata/gr00t_n15), shared by the model tests.

`TINY` is where the checkpoint is looked for (`tests.fixtures.shared_root()`); a test reaches it
through `needs_refdata` (or the `tiny_refdata` fixture), which skips when it is missing and fails
under CI=true.
"""

from __future__ import annotations

import pytest

from tests.fixtures import shared_path, shared_root

TINY = shared_root() / "refdata" / "gr00t_n15" / "tiny"

needs_refdata = pytest.mark.usefixtures("tiny_refdata")


def refdata(*parts: str):
    """`refdata/gr00t_n15/<parts...>`, checked (skip, or fail under CI) like every shared fixture."""
    return shared_path("refdata", "gr00t_n15", *parts)


@pytest.fixture(scope="session")
def tiny_refdata():
    """The tiny reference checkpoint directory (its model.safetensors must exist)."""
    return refdata("tiny", "model.safetensors").parent


def load(name: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(refdata("tiny", f"{name}.safetensors")))


def max_diff(a, b) -> float:
    return (a.detach().float() - b.detach().float()).abs().max().item()
