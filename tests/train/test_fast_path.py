"""The training fast path: compiled forward, bf16 frozen weights, fused-AdamW clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gr00t_exp.train.build import build_model_for_training, cast_frozen, compile_options, frozen_dtype
from gr00t_exp.train.config import OptimConfig
from gr00t_exp.train.optim import use_fused
from gr00t_exp.train.run import run

from .test_train import losses


def test_compiled_forward_trains_like_eager(make_cfg, tmp_path):
    """model.compile=true goes through torch.compile (aot_eager: the same kernels, no codegen on
    CI) and gives the eager run's losses; frozen parts stay in eval mode under the compiled call."""
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    run(make_cfg(3, out=eager))
    cfg = make_cfg(3, ["model.compile=true", "model.compile_backend=aot_eager"], out=compiled)
    assert compile_options(cfg) == {"backend": "aot_eager"}
    run(cfg)
    ref, got = losses(eager), losses(compiled)
    assert len(got) == 3 and got == pytest.approx(ref, rel=1e-4, abs=1e-5)


def test_compiled_module_keeps_frozen_parts_in_eval(make_cfg):
    from gr00t_exp.train.module import Gr00tLitModule

    cfg = make_cfg(2, ["model.compile=true", "model.compile_backend=eager"])
    model = build_model_for_training(cfg)
    lit = Gr00tLitModule(model, cfg.trainer.optim, total_steps=2, compile=compile_options(cfg))
    lit.train()  # what Lightning does at fit start: every module in train mode
    vision = model.backbone.eagle_model.vision_model
    assert vision.training
    lit.on_train_batch_start(None, 0)
    assert not vision.training and model.action_head.training
    fwd = lit.training_forward()
    assert fwd is lit.training_forward() and fwd is not model  # compiled once, reused


def test_frozen_weights_bf16_under_bf16_autocast(make_cfg):
    assert frozen_dtype(make_cfg(2)) is None  # fp32 CPU run: untouched
    cfg = make_cfg(2, ["trainer.precision=bf16-mixed"])
    assert frozen_dtype(cfg) is torch.bfloat16
    model = build_model_for_training(cfg)
    dtypes = {(p.requires_grad, p.dtype) for p in model.parameters()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}
    # A training step under bf16 autocast runs with the mixed-dtype weights and gives gradients.
    from gr00t_exp.data.datamodule import Gr00tDataModule

    dm = Gr00tDataModule.from_config(cfg)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(batch)["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.action_head.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="model.frozen_dtype"):
        frozen_dtype(make_cfg(2, ["model.frozen_dtype=float16"]))


def test_cast_frozen_leaves_trainable_params():
    m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    m[0].requires_grad_(False)
    assert cast_frozen(m, torch.bfloat16) == 2
    assert m[0].weight.dtype == torch.bfloat16 and m[1].weight.dtype == torch.float32


def test_fused_adamw_choice():
    m = nn.Linear(2, 2)
    assert not use_fused(m, OptimConfig(), "bf16-mixed")  # CPU parameters: foreach
    with pytest.raises(ValueError, match="CUDA"):
        use_fused(m, OptimConfig(fused=True), "bf16-mixed")
    with pytest.raises(ValueError, match="16-mixed"):
        use_fused(m, OptimConfig(fused=True), "16-mixed")
    assert not use_fused(m, OptimConfig(fused=False), "bf16-mixed")


def test_fused_clipping_clips_directly():
    """A fused optimiser's gradients are clipped by the module itself (Lightning's AMP plugin would
    refuse); the resulting norm is the clip value."""
    from gr00t_exp.train.module import Gr00tLitModule

    lin = nn.Linear(4, 4)
    lit = Gr00tLitModule(lin, OptimConfig(), total_steps=1)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3)
    opt.param_groups[0]["fused"] = True  # as a CUDA fused AdamW reports itself
    for p in lin.parameters():
        p.grad = torch.full_like(p, 10.0)
    lit.configure_gradient_clipping(opt, 1.0, "norm")
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in lin.parameters()]))
    assert norm == pytest.approx(1.0, rel=1e-5)


def test_fsdp_config_wraps_transformer_blocks_and_keeps_fp32(make_cfg):
    from hydra.utils import instantiate
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    cfg = make_cfg(2, ["trainer=fsdp", "trainer.accelerator=cpu"])
    assert frozen_dtype(cfg) is None  # one dtype per FSDP flat parameter
    strategy = instantiate(cfg.trainer.strategy)
    policy = strategy.kwargs["auto_wrap_policy"]
    assert isinstance(policy, ModuleWrapPolicy)
    names = {c.__name__ for c in policy._module_classes}
    assert names == {"SiglipEncoderLayer", "Qwen3DecoderLayer", "TransformerBlock"}
    model = build_model_for_training(cfg)
    wrapped = [m for m in model.modules() if type(m) in policy._module_classes]
    assert len(wrapped) >= 3  # every block type exists in the model


def test_bf16_mixed_run_trains_exports_and_evaluates(make_cfg, tmp_path):
    """bf16 frozen weights next to fp32 trainable ones through the whole job: fit (autocast),
    validation, fp32 hub export, and the open-loop evaluation after fit (under autocast too)."""
    import json

    from gr00t_exp.model import load_pretrained

    out = tmp_path / "bf16"
    value = run(make_cfg(2, ["trainer.precision=bf16-mixed", "trainer.eval_after_fit=true"], out=out))
    assert value == value  # a number, not NaN
    summary = json.loads((out / "eval" / "metrics.json").read_text())["summary"]
    assert summary["overall"]["mse"] >= 0 and summary["normalized_mse"] >= 0
    exported = load_pretrained(out / "export" / "last")
    assert {p.dtype for p in exported.parameters()} == {torch.float32}
