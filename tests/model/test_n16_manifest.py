"""The full-size GR00T N1.6-3B, built on the meta device, has exactly the released checkpoint's
state-dict keys, shapes, parameter counts and (with `released_dtypes`) storage dtypes."""

from __future__ import annotations

import pytest
import torch

from ._n16_refdata import load_json

LM_HEAD = "backbone.model.language_model.lm_head.weight"
EMBED = "backbone.model.language_model.model.embed_tokens.weight"


@pytest.fixture(scope="module")
def manifest():
    return load_json("manifest_full.json")


@pytest.fixture(scope="module")
def full_model():
    from gr00t_exp.model.n16.checkpoint import build_empty
    from gr00t_exp.model.n16.config import Gr00tN16Config

    cfg = Gr00tN16Config.from_hub_dicts(load_json("config_full.json"), load_json("eagle_config_full.json"))
    return build_empty(cfg)


def test_every_key_and_shape(full_model, manifest):
    expected = {k: tuple(v["shape"]) for k, v in manifest["keys"].items()}
    got = {k: tuple(v.shape) for k, v in full_model.state_dict(keep_vars=True).items()}
    assert len(expected) == manifest["num_keys"] == 1107
    assert sorted(set(expected) - set(got)) == []
    assert sorted(set(got) - set(expected)) == []
    assert {k: v for k, v in got.items() if expected[k] != v} == {}


def test_parameter_counts(full_model, manifest):
    sd = full_model.state_dict(keep_vars=True)
    # The manifest counts lm_head as its own tensor; the model ties it to embed_tokens (never used).
    assert sum(v.numel() for v in sd.values()) == manifest["num_unique_parameters"] == 3_286_610_368
    assert full_model.num_parameters() == manifest["num_unique_parameters_without_lm_head"] == 2_975_969_728
    assert sd[LM_HEAD] is sd[EMBED]
    for prefix, count in manifest["parameter_counts_by_prefix"].items():
        assert sum(v.numel() for k, v in sd.items() if k.startswith(prefix)) == count, prefix
    assert len(full_model.backbone.model.language_model.model.layers) == manifest["num_llm_layers_kept"] == 16


def test_released_dtypes(full_model, manifest):
    """bf16 backbone, fp32 LLM layers 12-15 (trainable in the released config), fp32 action head."""
    from gr00t_exp.model.n16.checkpoint import released_dtypes

    released_dtypes(full_model)
    got = {k: str(v.dtype).removeprefix("torch.") for k, v in full_model.state_dict(keep_vars=True).items()}
    assert {k: v["dtype"] for k, v in manifest["keys"].items()} == got
    counts: dict[str, int] = {}
    for v in got.values():
        counts[v] = counts.get(v, 0) + 1
    assert counts == manifest["dtype_counts"]


def test_shipped_3b_preset_is_the_manifest_architecture(full_model):
    from gr00t_exp.model.n16.checkpoint import build_empty
    from gr00t_exp.model.n16.config import Gr00tN16Config

    preset = build_empty(Gr00tN16Config.from_preset("gr00t_n16_3b"))
    assert {k: tuple(v.shape) for k, v in preset.state_dict(keep_vars=True).items()} == {
        k: tuple(v.shape) for k, v in full_model.state_dict(keep_vars=True).items()
    }


def test_trainable_set_of_released_defaults(full_model):
    """Default fine-tuning flags (LLM and vision frozen) keep the top 4 kept LLM layers, vlln, the
    projectors and the DiT trainable, as the released model's fp32 tensors say."""
    from gr00t_exp.model.config import ModelConfig
    from gr00t_exp.model.tuning import apply_tuning

    apply_tuning(full_model, ModelConfig())
    trainable = {n for n, p in full_model.named_parameters() if p.requires_grad}
    llm_layers = {
        n.split(".")[5] for n in trainable if n.startswith("backbone.model.language_model.model.layers.")
    }
    assert llm_layers == {"12", "13", "14", "15"}
    assert not any(
        n.startswith(("backbone.model.vision_model", "backbone.model.mlp1", EMBED)) for n in trainable
    )
    assert any(n.startswith("action_head.model.") for n in trainable)
    assert "action_head.vlln.weight" in trainable and "action_head.mask_token" in trainable
    assert torch.device("meta") == next(full_model.parameters()).device
