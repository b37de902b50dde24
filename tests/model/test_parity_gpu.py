"""Parity on a CUDA device (skipped without one): the SDPA GPU kernels keep both padding modes exact."""

from __future__ import annotations

import pytest
import torch

from ._model_refdata import TINY, load, max_diff, needs_refdata

pytestmark = [
    needs_refdata,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
TOL = 1e-4  # fp32 with TF32 off; GPU reductions order differently from the CPU reference


@pytest.fixture(scope="module")
def model():
    from gr00t_exp.model import load_pretrained

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return load_pretrained(TINY, device="cuda").eval()


@pytest.mark.parametrize(("name", "zero"), [("outputs_padzero", True), ("outputs", False)])
def test_padded_batch_on_gpu(model, name, zero):
    inputs = {k: v.cuda() for k, v in load("inputs").items()}
    ref, base = load(name), load("outputs")
    model.zero_padded_rows = zero
    with torch.no_grad():
        out = model(inputs, noise=base["train_noise"].cuda(), t=base["train_t"].cuda())
        act = model.get_action(inputs, init_noise=base["infer_init_noise"].cuda())["action_pred"]
    model.zero_padded_rows = True
    assert max_diff(out["backbone_features"].cpu(), ref["backbone_features"]) < TOL
    assert abs(out["loss"].item() - ref["loss"].item()) < TOL
    assert max_diff(act.cpu(), ref["action_pred"]) < TOL
