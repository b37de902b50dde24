"""Optimiser and schedule follow upstream's defaults."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gr00t_exp.train.config import OptimConfig
from gr00t_exp.train.optim import build_optimizer, build_scheduler, lr_lambda


def _net() -> nn.Module:
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    net[2].weight.requires_grad_(False)
    return net


def test_adamw_defaults_and_decay_groups():
    opt = build_optimizer(_net(), OptimConfig())
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["betas"] == (0.95, 0.999) and opt.defaults["lr"] == 1e-4
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 1e-5 and plain["weight_decay"] == 0.0
    # Only the first Linear's weight decays; biases and the norm do not; the frozen weight is absent.
    assert [p.shape for p in decayed["params"]] == [torch.Size([8, 4])]
    assert len(plain["params"]) == 4


def test_cosine_with_five_percent_warmup():
    total = 200
    warm = math.ceil(0.05 * total)
    assert lr_lambda(0, total, 0.05, "cosine") == 0.0
    assert lr_lambda(warm // 2, total, 0.05, "cosine") == pytest.approx(0.5)
    assert lr_lambda(warm, total, 0.05, "cosine") == pytest.approx(1.0)
    mid = warm + (total - warm) // 2
    assert lr_lambda(mid, total, 0.05, "cosine") == pytest.approx(0.5, abs=0.01)
    assert lr_lambda(total, total, 0.05, "cosine") == pytest.approx(0.0, abs=1e-12)


def test_scheduler_drives_the_lr():
    opt = build_optimizer(_net(), OptimConfig(lr=1e-3))
    sched = build_scheduler(opt, OptimConfig(lr=1e-3), total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(1e-3) and lrs[-1] < 1e-5


def test_bad_scheduler_name_and_nothing_to_train_fail_clearly():
    with pytest.raises(ValueError, match="trainer.optim.scheduler"):
        build_scheduler(build_optimizer(_net(), OptimConfig()), OptimConfig(scheduler="cosin"), 10)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        build_optimizer(frozen, OptimConfig())
