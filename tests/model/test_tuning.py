"""apply_tuning / merge_lora on the tiny GR00T N1.5: flags, eval of frozen parts, LoRA, checkpointing."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from gr00t_exp.model.build import build_model
from gr00t_exp.model.config import ModelConfig
from gr00t_exp.model.gr00t_n15 import Gr00tN15
from gr00t_exp.model.tuning import apply_tuning, format_summary, has_lora, merge_lora, parameter_summary

# Expected trainability per module prefix, written out independently of the implementation.
FLAG_OF = {
    "backbone.eagle_model.language_model.": "tune_llm",
    "backbone.eagle_model.vision_model.": "tune_visual",
    "backbone.eagle_model.mlp1.": "tune_visual",
    "action_head.state_encoder.": "tune_projector",
    "action_head.action_encoder.": "tune_projector",
    "action_head.action_decoder.": "tune_projector",
    "action_head.position_embedding.": "tune_projector",
    "action_head.model.": "tune_diffusion_model",
}
ALWAYS = ("action_head.vlln.", "action_head.vl_self_attention.", "action_head.future_tokens.")
POOLING_HEAD = "backbone.eagle_model.vision_model.vision_model.head."


def tiny_model(seed: int = 0) -> Gr00tN15:
    torch.manual_seed(seed)
    return build_model(ModelConfig(name="gr00t_n15_tiny", arch_preset="gr00t_n15_tiny", random_init=True))


@pytest.fixture(scope="module")
def base_model() -> Gr00tN15:
    return tiny_model()


@pytest.fixture()
def model(base_model) -> Gr00tN15:
    return copy.deepcopy(base_model)


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    """One sample, one 224x224 view (small, so the CPU tests stay fast)."""
    import numpy as np

    from gr00t_exp.model.processor import Gr00tProcessor

    rng = np.random.default_rng(0)
    b = Gr00tProcessor.from_pretrained()([[rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)]], ["pick it"])
    g = torch.Generator().manual_seed(0)
    b["state"] = torch.randn(1, 1, 64, generator=g)
    b["action"] = torch.randn(1, 16, 32, generator=g)
    b["action_mask"] = torch.ones(1, 16, 32, dtype=torch.bool)
    b["embodiment_id"] = torch.tensor([31])
    return b


def _fixed_draws(batch, seed=3):
    g = torch.Generator().manual_seed(seed)
    b = batch["state"].shape[0]
    return torch.randn(b, 16, 32, generator=g), torch.rand(b, generator=g)


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=4)))
def test_flags_freeze_exactly_upstream_sets(model, flags):
    cfg = ModelConfig()
    cfg.tune_llm, cfg.tune_visual, cfg.tune_projector, cfg.tune_diffusion_model = flags
    apply_tuning(model, cfg)
    for name, p in model.named_parameters():
        if name.startswith(POOLING_HEAD):
            expected = False  # checkpoint-only, never run
        elif name.startswith(ALWAYS):
            expected = True
        else:
            flag = next((f for pre, f in FLAG_OF.items() if name.startswith(pre)), None)
            assert flag is not None, f"unclassified parameter {name}"
            expected = getattr(cfg, flag)
        assert p.requires_grad == expected, (name, flags)


def test_frozen_parts_run_in_eval_mode(model, batch):
    cfg = ModelConfig(tune_diffusion_model=False)  # llm, visual, DiT frozen; projectors train
    apply_tuning(model, cfg)
    model.train()  # what a trainer does
    noise, t = _fixed_draws(batch)
    model(batch, noise=noise, t=t)["loss"].backward()
    em = model.backbone.eagle_model
    assert not em.vision_model.training and not em.language_model.training and not em.mlp1.training
    assert not model.action_head.model.training
    assert model.action_head.vl_self_attention.training and model.action_head.state_encoder.training
    # Frozen DiT: dropout off, so two training-mode passes through it agree given the same inputs.
    grads = [p for p in model.parameters() if p.grad is not None]
    assert grads and all(p.requires_grad for p in grads)


def test_deepcopy_keeps_frozen_eval_working(model, batch):
    apply_tuning(model, ModelConfig())
    clone = copy.deepcopy(model).train()
    noise, t = _fixed_draws(batch)
    with torch.no_grad():
        clone(batch, noise=noise, t=t)
    # The hook of the copy acts on the copy's own modules (names, not captured objects).
    assert not clone.backbone.eagle_model.language_model.training
    assert clone.action_head.model.training


def test_summary_counts(model):
    apply_tuning(model, ModelConfig())
    rows = parameter_summary(model)
    total = rows[-1]
    assert total.module == "total"
    assert total.total == sum(p.numel() for p in model.parameters())
    assert total.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(r.total for r in rows[:-1]) == total.total
    by_name = {r.module: r for r in rows}
    assert by_name["backbone.eagle_model.language_model"].trainable == 0
    assert by_name["action_head.model"].trainable == by_name["action_head.model"].total
    assert "action_head.vl_self_attention" in format_summary(rows)


def _randomize_lora_b(model, seed=7):
    # peft initialises lora_B to zero (adapter = identity); make it non-trivial for the merge test.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize(
    "targets,target_modules,prefix",
    [
        (["action_head"], ["to_q", "to_k", "to_v"], "action_head."),
        (["dit"], ["to_q", "to_v"], "action_head.model."),
        (["llm"], ["q_proj", "k_proj", "v_proj"], "backbone.eagle_model.language_model."),
    ],
)
def test_lora_adapters_only_in_targets_and_merge_is_exact(model, batch, targets, target_modules, prefix):
    plain_keys = set(model.state_dict())
    cfg = ModelConfig()
    cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout = 4, 8, 0.0
    cfg.lora.targets, cfg.lora.target_modules = targets, target_modules
    apply_tuning(model, cfg)
    assert has_lora(model)
    lora = [n for n, _ in model.named_parameters() if ".lora_" in n]
    assert lora and all(n.startswith(prefix) for n in lora)
    for n in lora:
        layer = n.split(".lora_")[0].rsplit(".", 1)[-1]
        assert layer in target_modules, n
    for n, p in model.named_parameters():
        if ".lora_" in n:
            assert p.requires_grad, n
        elif n.startswith(prefix):
            assert not p.requires_grad, f"base weight of a LoRA target trains: {n}"
    if targets == ["llm"]:
        # Outside the LoRA targets the flags still rule: the action head trains fully.
        assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("action_head.model."))

    _randomize_lora_b(model)
    model.eval()
    noise, t = _fixed_draws(batch)
    with torch.no_grad():
        before = model(batch, noise=noise, t=t)["pred_velocity"]
        act_before = model.get_action(batch, init_noise=noise)["action_pred"]
        plain = tiny_model()  # same seed: the base weights without adapters
        assert not torch.allclose(plain(batch, noise=noise, t=t)["pred_velocity"], before, atol=1e-4)
    merge_lora(model)
    assert not has_lora(model)
    assert set(model.state_dict()) == plain_keys
    with torch.no_grad():
        after = model(batch, noise=noise, t=t)["pred_velocity"]
        act_after = model.get_action(batch, init_noise=noise)["action_pred"]
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(act_after, act_before, atol=1e-5, rtol=1e-5)


def test_lora_training_step_updates_adapters_only(model, batch):
    cfg = ModelConfig()
    cfg.lora.rank = 4
    apply_tuning(model, cfg)
    model.train()
    noise, t = _fixed_draws(batch)
    model(batch, noise=noise, t=t)["loss"].backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all(".lora_" in n for n in with_grad)
    # lora_B starts at zero, so only it has a non-zero gradient at the first step.
    assert any(
        float(p.grad.abs().sum()) > 0
        for n, p in model.named_parameters()
        if "lora_B" in n and p.grad is not None
    )


def test_gradient_checkpointing_same_gradients(base_model, batch):
    noise, t = _fixed_draws(batch)
    grads = []
    for ckpt in (False, True):
        m = copy.deepcopy(base_model)
        cfg = ModelConfig(tune_visual=True, tune_llm=True, gradient_checkpointing=ckpt)
        apply_tuning(m, cfg)
        m.train()
        torch.manual_seed(11)  # same dropout masks; checkpointing replays the RNG state
        m(batch, noise=noise, t=t)["loss"].backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], atol=1e-6, rtol=1e-5, msg=n)


def test_bad_lora_config_is_reported(model):
    cfg = ModelConfig()
    cfg.lora.rank, cfg.lora.targets = 4, ["decoder"]
    with pytest.raises(ValueError, match="model.lora.targets"):
        apply_tuning(model, cfg)
    cfg.lora.targets, cfg.lora.target_modules = ["action_head"], ["nonexistent"]
    with pytest.raises(ValueError, match="target_modules"):
        apply_tuning(copy.deepcopy(model), cfg)


def test_hydra_composed_model_config(model):
    from gr00t_exp.config.compose import compose_config

    cfg = compose_config(["model=gr00t_n15_tiny", "model.tune_llm=true", "model.lora.rank=2"])
    apply_tuning(model, cfg.model)
    assert has_lora(model)
    assert all(p.requires_grad for n, p in model.named_parameters() if ".language_model." in n)
