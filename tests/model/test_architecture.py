"""Behaviour of the N1.5 architecture beyond the reference numbers (tiny sizes, CPU)."""

from __future__ import annotations

import copy

import pytest
import torch

from gr00t_exp.model import ModelConfig, build_model
from gr00t_exp.model.build import architecture

from ._model_refdata import load, max_diff, needs_refdata

HEAD = "backbone.eagle_model.vision_model.vision_model.head."


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(arch_preset="gr00t_n15_tiny", random_init=True)).eval()


@pytest.fixture(scope="module")
def batch():
    return {k: v for k, v in load("inputs_nopad").items() if not k.startswith("raw_")}


@pytest.fixture(scope="module")
def one(batch):
    return _sample(batch, 0)


def _sample(batch: dict, i: int) -> dict:
    """Sample i alone (the nopad batch has 2 images per sample)."""
    out = {k: v[i : i + 1] for k, v in batch.items() if k != "eagle_pixel_values"}
    out["eagle_pixel_values"] = batch["eagle_pixel_values"][2 * i : 2 * i + 2]
    return out


@needs_refdata
def test_mixed_embodiments_match_per_sample_runs(model, batch):
    """Per-embodiment weights are gathered per sample: a mixed batch equals separate runs."""
    mixed = dict(batch, embodiment_id=torch.tensor([31, 24]))
    noise = torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        both = model.get_action(mixed, init_noise=noise)["action_pred"]
        loss_vel = model(mixed, noise=noise, t=t)["pred_velocity"]
        for i in range(2):
            single = _sample(mixed, i)
            one = model.get_action(single, init_noise=noise[i : i + 1])["action_pred"]
            assert max_diff(one[0], both[i]) < 1e-5
            vel = model(single, noise=noise[i : i + 1], t=t[i : i + 1])["pred_velocity"]
            assert max_diff(vel[0], loss_vel[i]) < 1e-5
    swapped = dict(mixed, embodiment_id=torch.tensor([24, 31]))
    with torch.no_grad():
        other = model.get_action(swapped, init_noise=noise)["action_pred"]
    assert max_diff(other, both) > 1e-3  # the embodiment id selects different weights


@needs_refdata
def test_pooling_head_never_runs_and_gets_no_gradient(model, one):
    m = copy.deepcopy(model).train()
    head = m.backbone.eagle_model.vision_model.vision_model.head

    def boom(*_):
        raise AssertionError("SigLIP pooling head ran")

    handle = head.register_forward_pre_hook(boom)
    try:
        out = m(one)
        out["loss"].backward()
        m.eval().get_action(one)
    finally:
        handle.remove()
    for name, p in m.named_parameters():
        if name.startswith(HEAD):
            assert not p.requires_grad and p.grad is None, name
        elif name.startswith(
            ("action_head.", "backbone.eagle_model.mlp1", "backbone.eagle_model.vision_model")
        ):
            assert p.grad is not None, name  # every used parameter is reached by the loss


def test_random_draws_are_injectable_and_seeded(model, batch):
    with torch.no_grad():
        torch.manual_seed(3)
        a = model(batch)["loss"]
        torch.manual_seed(3)
        out = model(batch)
        b = out["loss"]
        torch.manual_seed(4)
        x = model.get_action(batch)["action_pred"]
        torch.manual_seed(4)
        y = model.get_action(batch)["action_pred"]
    assert torch.equal(a, b) and torch.equal(x, y)
    assert ((out["t"] > 0) & (out["t"] <= 1)).all()
    assert torch.equal(out["timesteps"], (out["t"] * 1000).long())


def test_loss_is_masked_mse_on_velocity(model, batch):
    noise = torch.randn(2, 16, 32)
    t = torch.tensor([0.25, 0.75])
    with torch.no_grad():
        out = model(batch, noise=noise, t=t)
    mask = batch["action_mask"].float()
    target = batch["action"] - noise
    expected = (((out["pred_velocity"] - target) ** 2) * mask).sum() / mask.sum()
    assert torch.allclose(out["loss"], expected)
    assert not torch.allclose(out["loss"], ((out["pred_velocity"] - target) ** 2).mean())


def test_action_chunk_overrides():
    torch.manual_seed(0)
    cfg = ModelConfig(arch_preset="gr00t_n15_tiny", random_init=True, action_horizon=8, max_action_dim=16)
    m = build_model(cfg).eval()
    assert m.action_head.action_decoder.layer2.W.shape[-1] == 16
    b = {
        "eagle_input_ids": torch.tensor([[151644, 151669, 151645]]).repeat_interleave(1, 0),
        "eagle_attention_mask": torch.ones(1, 3, dtype=torch.long),
        "eagle_pixel_values": torch.zeros(1, 3, 224, 224),
        "state": torch.zeros(1, 1, 64),
        "embodiment_id": torch.tensor([31]),
        "action": torch.zeros(1, 8, 16),
        "action_mask": torch.ones(1, 8, 16, dtype=torch.bool),
    }
    # 256 image tokens per image are required: build a matching prompt.
    ids = torch.full((1, 258), 151669)
    ids[0, 0], ids[0, -1] = 151644, 151645
    b["eagle_input_ids"], b["eagle_attention_mask"] = ids, torch.ones_like(ids)
    with torch.no_grad():
        assert m.get_action(b)["action_pred"].shape == (1, 8, 16)
        assert torch.isfinite(m(b)["loss"])


def test_image_token_count_mismatch_is_explained(model, batch):
    bad = dict(batch, eagle_pixel_values=batch["eagle_pixel_values"][:3])
    with pytest.raises(ValueError, match="IMG_CONTEXT"):
        model.get_action(bad)


def test_bf16_weights_run_and_stay_close(one):
    torch.manual_seed(0)
    fp32 = build_model(ModelConfig(arch_preset="gr00t_n15_tiny", random_init=True)).eval()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    rope = bf16.backbone.eagle_model.language_model.model.rotary_emb
    assert bf16.dtype == torch.bfloat16 and rope.inv_freq.dtype == torch.float32
    noise = torch.randn(1, 16, 32)
    with torch.no_grad():
        a = fp32.get_action(one, init_noise=noise)["action_pred"]
        b = bf16.get_action(one, init_noise=noise)["action_pred"]
        loss = bf16(one, noise=noise, t=torch.tensor([0.5]))["loss"]
    assert b.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert max_diff(a, b) < 0.1 * a.abs().max().item()


def test_gradient_checkpointing_gives_the_same_gradients(model, one):
    noise, t = torch.randn(1, 16, 32), torch.tensor([0.4])
    grads = []
    for ckpt in (False, True):
        m = copy.deepcopy(model).train()
        for mod in m.modules():  # dropout off so both runs are comparable
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
        m.set_gradient_checkpointing(ckpt)
        m(one, noise=noise, t=t)["loss"].backward()
        grads.append({k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], atol=1e-5), k


def test_gradient_step_lowers_the_loss(model, one):
    """The gradients are those of the loss: a small step against them lowers it (no dropout)."""
    m = copy.deepcopy(model).eval()
    noise, t = torch.randn(1, 16, 32), torch.tensor([0.5])
    loss = m(one, noise=noise, t=t)["loss"]
    loss.backward()
    with torch.no_grad():
        for p in m.parameters():
            if p.grad is not None:
                p -= 0.01 * p.grad
        after = m(one, noise=noise, t=t)["loss"]
    assert after < loss.detach() - 1e-4


def test_full_preset_architecture_without_weights():
    arch = architecture(ModelConfig(base_model_path="nvidia/GR00T-N1.5-3B", random_init=True))
    assert arch.backbone_cfg.select_layer == 12
    assert arch.text_config["hidden_size"] == 2048 and arch.vision_config["num_hidden_layers"] == 27
    assert arch.action_head_cfg.diffusion_model_cfg.num_layers == 16
    over = architecture(
        ModelConfig(arch_preset="gr00t_n15_tiny", arch={"action_head_cfg": {"hidden_size": 40}})
    )
    assert over.action_head_cfg.hidden_size == 40


def test_hydra_model_configs_build(repo_root):
    from gr00t_exp.config.compose import compose_config

    cfg = compose_config(["model=gr00t_n15_tiny"])
    m = build_model(cfg.model)
    assert m.config.text_config["hidden_size"] == 32 and m.dtype == torch.float32
    full = compose_config(["model=gr00t_n15", "model.random_init=true"])
    assert architecture(full.model).action_head_cfg.input_embedding_dim == 1536
