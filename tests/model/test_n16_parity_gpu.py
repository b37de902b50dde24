"""GR00T N1.6 parity on a CUDA device (skipped without one): SDPA kernels, fp32 (TF32 off) and bf16."""

from __future__ import annotations

import pytest
import torch

from ._n16_refdata import as_batch, load, max_diff, n16

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
TOL = 1e-4  # fp32 with TF32 off; GPU reductions order differently from the CPU reference
BF16_ACTION_TOL = 0.1  # bf16 weights: 0.039 / 0.035 measured on CPU (action_pred up to 4.5)
BF16_LOSS_TOL = 0.02  # 0.005 / 0.003 measured on CPU


def _cuda(batch):
    return {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@pytest.fixture(scope="module", params=["", "_nopad"], ids=["padded", "nopad"])
def case(request):
    return _cuda(as_batch(load(f"inputs{request.param}"))), load(f"outputs{request.param}")


@pytest.fixture(scope="module")
def model_fp32():
    from gr00t_exp.model import load_pretrained

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return load_pretrained(n16("model.safetensors").parent, device="cuda").eval()


@pytest.fixture(scope="module")
def model_bf16():
    from gr00t_exp.model import load_pretrained

    return load_pretrained(n16("model.safetensors").parent, device="cuda", dtype=torch.bfloat16).eval()


def test_fp32_on_gpu(model_fp32, case):
    batch, ref = case
    with torch.no_grad():
        out = model_fp32(batch, noise=ref["train_noise"].cuda(), t=ref["train_t"].cuda())
        act = model_fp32.get_action(batch, init_noise=ref["infer_init_noise"].cuda())
    real = ref["backbone_attention_mask"]
    assert max_diff(out["backbone_features"].cpu()[real], ref["backbone_features"][real]) < TOL
    assert max_diff(out["pred_velocity"].cpu(), ref["train_pred_velocity"]) < TOL
    assert abs(out["loss"].item() - ref["loss"].item()) < TOL
    for k in range(4):
        assert max_diff(act["velocities"][k].cpu(), ref[f"infer_velocity_step{k}"]) < TOL
    assert max_diff(act["action_pred"].cpu(), ref["action_pred"]) < TOL


def test_bf16_on_gpu(model_bf16, case):
    batch, ref = case
    with torch.no_grad():
        out = model_bf16(batch, noise=ref["train_noise"].cuda(), t=ref["train_t"].cuda())
        act = model_bf16.get_action(batch, init_noise=ref["infer_init_noise"].cuda())["action_pred"]
    assert act.dtype == torch.bfloat16 and torch.isfinite(act.float()).all()
    assert max_diff(act.float().cpu(), ref["action_pred"]) < BF16_ACTION_TOL
    assert abs(out["loss"].item() - ref["loss"].item()) < BF16_LOSS_TOL


def test_graph_replay_equals_eager(model_fp32, case):
    """N1.6's get_action replayed from one CUDA graph (the serving fast path; the processor's
    per-image pixel list stacked into one buffer) equals eager, and new inputs reach it."""
    from gr00t_exp.model.inference import GraphedGetAction

    batch, ref = case
    noise = ref["infer_init_noise"].cuda()
    with torch.inference_mode():
        eager = model_fp32.get_action(batch, init_noise=noise)["action_pred"]
    fast = GraphedGetAction(model_fp32, mode="cudagraph", autocast=False)
    got = fast(batch, init_noise=noise)
    assert max_diff(got.cpu(), eager.cpu()) < TOL and max_diff(got.cpu(), ref["action_pred"]) < TOL
    moved = fast({**batch, "state": batch["state"] + 0.5}, init_noise=noise)
    assert max_diff(moved.cpu(), got.cpu()) > 10 * TOL and len(fast.signatures) == 1
