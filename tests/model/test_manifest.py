"""The full-size 3B model, built on the meta device, has exactly the checkpoint's keys and shapes."""

from __future__ import annotations

import json

import pytest

from ._model_refdata import refdata

LM_HEAD = "backbone.eagle_model.language_model.lm_head.weight"


@pytest.fixture(scope="session")
def full_refdata():
    """refdata/gr00t_n15 with the full-size manifest and configs (skips when missing, fails under CI=true)."""
    for name in ("manifest_full.json", "config_full.json", "eagle_config_full.json"):
        refdata(name)
    return refdata()


@pytest.fixture(scope="module")
def manifest(full_refdata):
    return json.loads((full_refdata / "manifest_full.json").read_text())


@pytest.fixture(scope="module")
def full_model(full_refdata):
    from gr00t_exp.model.checkpoint import build_empty
    from gr00t_exp.model.config import Gr00tN15Config

    cfg = Gr00tN15Config.from_hub_dicts(
        json.loads((full_refdata / "config_full.json").read_text()),
        json.loads((full_refdata / "eagle_config_full.json").read_text()),
    )
    return build_empty(cfg)


def test_every_key_and_shape(full_model, manifest):
    expected = {k: tuple(v[0]) for k, v in manifest["keys"].items()}
    got = {k: tuple(v.shape) for k, v in full_model.state_dict(keep_vars=True).items()}
    assert set(expected) - set(got) == {LM_HEAD}  # the tied LM head is never built
    assert set(got) - set(expected) == set()
    assert [k for k in got if got[k] != expected[k]] == []


def test_parameter_counts_per_prefix(full_model, manifest):
    params = dict(full_model.named_parameters())
    assert sum(p.numel() for p in params.values()) == manifest["total_parameters_unique"]
    for prefix, n in manifest["top_level_prefixes"].items():
        assert sum(p.numel() for k, p in params.items() if k.startswith(prefix + ".")) == n, prefix


def test_llm_is_truncated_and_has_no_head(full_model, manifest):
    lm = full_model.backbone.eagle_model.language_model
    assert len(lm.model.layers) == len(manifest["llm_truncation"]["layers_kept"]) == 12
    assert not hasattr(lm, "lm_head")
    assert full_model.state_dict(keep_vars=True).keys().isdisjoint({LM_HEAD})


def test_no_persistent_buffers(full_model, manifest):
    params = {k for k, _ in full_model.named_parameters()}
    assert (
        sorted(set(full_model.state_dict(keep_vars=True)) - params)
        == manifest["persistent_buffers_in_state_dict"]
    )


def test_full_size_defaults_are_the_hub_config(full_refdata):
    """With no eagle_config.json the shipped N1.5 defaults are the reference's Eagle config."""
    from gr00t_exp.model.config import load_preset

    config, eagle = load_preset("gr00t_n15_3b")
    assert config == json.loads((full_refdata / "config_full.json").read_text())
    assert eagle == json.loads((full_refdata / "eagle_config_full.json").read_text())
