"""Loaders of the GR00T N1.6 reference fixture (refdata/gr00t_n16), shared by the test_n16_* tests.

Everything goes through `tests.fixtures.shared_path`: a missing fixture skips (fails under CI=true).
"""

from __future__ import annotations

import json

import torch

from tests.fixtures import shared_path


def n16(*parts: str):
    """`refdata/gr00t_n16/<parts...>` (checked)."""
    return shared_path("refdata", "gr00t_n16", *parts)


def load(name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(n16(f"{name}.safetensors")))


def load_json(*parts: str):
    return json.loads(n16(*parts).read_text())


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().double() - b.detach().double()).abs().max().item()


def as_batch(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The fixture's input names -> the project's batch keys (eagle_* for the VL inputs)."""
    out = {k: v for k, v in inputs.items() if not k.startswith(("raw_", "proc_image_"))}
    for name in ("input_ids", "attention_mask", "pixel_values"):
        out[f"eagle_{name}"] = out.pop(name)
    return out
