"""GR00T N1.6 checkpoints: hub-layout round trips, model_type dispatch, clear errors, Hydra
configs, tuning; on the tiny fixture (refdata/gr00t_n16) and N1.5's (refdata/gr00t_n15/tiny)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open

from tests.fixtures import shared_path

from ._n16_refdata import as_batch, load, max_diff, n16

LM_HEAD = "backbone.model.language_model.lm_head.weight"
PROCESSOR_FILES = ("processor_config.json", "statistics.json", "embodiment_id.json")


@pytest.fixture(scope="module")
def ckpt_dir():
    return n16("model.safetensors").parent


@pytest.fixture(scope="module")
def n15_dir():
    return shared_path("refdata", "gr00t_n15", "tiny", "model.safetensors").parent


@pytest.fixture(scope="module")
def model(ckpt_dir):
    from gr00t_exp.model import load_pretrained

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_pretrained(ckpt_dir)


@pytest.fixture(scope="module")
def nopad():
    inputs, ref = load("inputs_nopad"), load("outputs_nopad")
    return as_batch(inputs), ref


def _copy(src, dst, skip=()):
    dst.mkdir()
    for f in src.iterdir():
        if (
            f.is_file()
            and f.name not in skip
            and f.suffix in (".json", ".safetensors")
            and "puts" not in f.name
        ):
            shutil.copy(f, dst / f.name)
    return dst


def test_round_trip_hub_layout(model, tmp_path, nopad):
    from gr00t_exp.model import load_pretrained, save_pretrained

    out = save_pretrained(model, tmp_path / "ckpt")
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "eagle_config.json", "model.safetensors", *PROCESSOR_FILES} <= names
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "Gr00tN1d6" and cfg["select_layer"] == 3
    assert "noise_s" not in cfg  # defaults are not written, as the reference does
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert LM_HEAD not in set(f.keys())  # tied to embed_tokens: dropped, as the reference
    for name in PROCESSOR_FILES:
        assert json.loads((out / name).read_text()) == model.metadata[name]
    again = load_pretrained(out)
    sd, sd2 = model.state_dict(), again.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    batch, ref = nopad
    with torch.no_grad():
        a = again.get_action(batch, init_noise=ref["infer_init_noise"])["action_pred"]
    assert max_diff(a, ref["action_pred"]) < 1e-5


def test_sharded_save_and_generic_dispatch(model, tmp_path):
    from gr00t_exp.model import Gr00tN16, load_pretrained, save_pretrained

    out = save_pretrained(model, tmp_path / "sharded", max_shard_size=4 * 1024**2)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert isinstance(load_pretrained(out), Gr00tN16)


def test_released_mixed_dtypes_round_trip(ckpt_dir, tmp_path, nopad):
    from gr00t_exp.model import load_pretrained, save_pretrained
    from gr00t_exp.model.n16.checkpoint import released_dtypes

    m = released_dtypes(load_pretrained(ckpt_dir))
    out = save_pretrained(m, tmp_path / "mixed")
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    again = load_pretrained(out, dtype=None)  # as stored
    layers = again.backbone.model.language_model.model.layers
    assert layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    assert layers[-1].mlp.up_proj.weight.dtype == torch.float32  # tune_top_llm_layers = 1
    assert again.action_head.dtype == torch.float32
    batch, ref = nopad
    with torch.no_grad():
        a = again.get_action(batch, init_noise=ref["infer_init_noise"])["action_pred"]
    assert a.dtype == torch.float32 and torch.isfinite(a).all()
    assert max_diff(a, ref["action_pred"]) < 0.5  # bf16 backbone


def test_n15_checkpoint_asked_to_load_as_n16(n15_dir):
    from gr00t_exp.model import CheckpointError, load_pretrained
    from gr00t_exp.model.n16.checkpoint import load_pretrained as load_n16

    with pytest.raises(CheckpointError, match=r"config\.json.*'gr00t_n1_5'.*model=gr00t_n15"):
        load_n16(n15_dir)
    with pytest.raises(CheckpointError, match=r"gr00t_n1_5.*asked to load as gr00t_n16.*Fix"):
        load_pretrained(n15_dir, family="gr00t_n16")


def test_n16_checkpoint_asked_to_load_as_n15(ckpt_dir):
    from gr00t_exp.model import CheckpointError, load_pretrained
    from gr00t_exp.model.config import Gr00tN15Config

    with pytest.raises(CheckpointError, match=r"Gr00tN1d6.*asked to load as gr00t_n15.*Fix"):
        load_pretrained(ckpt_dir, family="gr00t_n15")
    with pytest.raises(ValueError, match=r"Gr00tN1d6.*model=gr00t_n16"):
        Gr00tN15Config.from_hub_dicts(json.loads((ckpt_dir / "config.json").read_text()))


def test_n15_weights_under_an_n16_config(ckpt_dir, n15_dir, tmp_path):
    from gr00t_exp.model import CheckpointError
    from gr00t_exp.model.n16.checkpoint import load_pretrained as load_n16

    d = _copy(ckpt_dir, tmp_path / "mixed", skip=("model.safetensors",))
    shutil.copy(n15_dir / "model.safetensors", d / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"N1\.5's \(backbone\.eagle_model"):
        load_n16(d)


@pytest.mark.parametrize("missing", ["processor_config.json", "statistics.json", "embodiment_id.json"])
def test_missing_processor_file(ckpt_dir, tmp_path, missing):
    from gr00t_exp.model import CheckpointError
    from gr00t_exp.model.n16.checkpoint import load_pretrained as load_n16

    d = _copy(ckpt_dir, tmp_path / "ckpt", skip=(missing,))
    with pytest.raises(CheckpointError, match=rf"no {missing}.*copy them"):
        load_n16(d)
    assert load_n16(d, require_processor_files=False).metadata is not None


def test_wrong_sizes_name_the_tensor(ckpt_dir, tmp_path):
    from gr00t_exp.model import CheckpointError
    from gr00t_exp.model.n16.checkpoint import load_pretrained as load_n16

    d = _copy(ckpt_dir, tmp_path / "ckpt", skip=("config.json",))
    cfg = json.loads((ckpt_dir / "config.json").read_text())
    cfg["hidden_size"] = 40
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"shape mismatch: action_head\.state_encoder\.layer1\.W"):
        load_n16(d)


def test_hydra_configs_select_n16(ckpt_dir):
    from gr00t_exp.config.compose import compose_config
    from gr00t_exp.model import Gr00tN16, build_model
    from gr00t_exp.model.build import n16_architecture

    tiny = build_model(compose_config(["model=gr00t_n16_tiny"]).model)
    assert isinstance(tiny, Gr00tN16) and tiny.config.backbone_embedding_dim == 24
    full = compose_config(["model=gr00t_n16", "model.random_init=true"])
    arch = n16_architecture(full.model)
    assert arch.diffusion_model_cfg.num_layers == 32 and arch.select_layer == 16
    loaded = build_model(compose_config(["model=gr00t_n16", f"model.base_model_path={ckpt_dir}"]).model)
    assert isinstance(loaded, Gr00tN16) and loaded.metadata is not None


def test_tuning_and_a_training_step(ckpt_dir, nopad):
    from gr00t_exp.model import load_pretrained
    from gr00t_exp.model.config import ModelConfig
    from gr00t_exp.model.tuning import apply_tuning, parameter_summary

    m = load_pretrained(ckpt_dir)
    apply_tuning(m, ModelConfig())
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    kept = m.config.select_layer - 1  # tune_top_llm_layers = 1 in the tiny config
    assert any(n.startswith(f"backbone.model.language_model.model.layers.{kept}.") for n in trainable)
    assert not any(n.startswith("backbone.model.language_model.model.layers.0.") for n in trainable)
    assert not any(n.startswith("backbone.model.vision_model") for n in trainable)
    rows = {r.module: r for r in parameter_summary(m)}
    assert rows["action_head.model"].trainable == rows["action_head.model"].total > 0
    m.train()
    batch, ref = nopad
    out = m(batch)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert m.action_head.model.proj_out_2.weight.grad is not None
    assert m.backbone.model.vision_model.vision_model.embeddings.patch_embedding.weight.grad is None


def test_state_dropout_is_not_gated_by_training(ckpt_dir, nopad):
    """With state_dropout_prob > 0 the loss pass replaces the state token by mask_token where the
    uniform draw is < p, in eval mode too; get_action never drops the state."""
    from gr00t_exp.model.n16.config import Gr00tN16Config
    from gr00t_exp.model.n16.model import Gr00tN16

    cfg = Gr00tN16Config.from_preset("gr00t_n16_tiny", {"state_dropout_prob": 0.5})
    m = Gr00tN16(cfg).eval()
    batch, ref = nopad
    with torch.no_grad():
        out = m(
            batch, noise=ref["train_noise"], t=ref["train_t"], state_dropout_uniform=torch.tensor([0.1, 0.9])
        )
        act = m.get_action(batch, init_noise=ref["infer_init_noise"])
    assert torch.equal(out["state_features"][0], m.action_head.mask_token[0])
    assert torch.equal(out["state_features"][1], act["state_features"][1])
    assert not torch.equal(act["state_features"][0], m.action_head.mask_token[0])


def test_gradient_checkpointing_same_gradients(nopad):
    from gr00t_exp.model.n16.config import Gr00tN16Config
    from gr00t_exp.model.n16.model import Gr00tN16

    batch, ref = nopad
    torch.manual_seed(0)
    m = Gr00tN16(Gr00tN16Config.from_preset("gr00t_n16_tiny")).eval()

    def grads(enabled: bool) -> dict[str, torch.Tensor]:
        m.zero_grad()
        m.set_gradient_checkpointing(enabled)
        m.train()
        for mod in m.modules():  # dropout off: the comparison must be deterministic
            if isinstance(mod, torch.nn.Dropout):
                mod.eval()
        m(batch, noise=ref["train_noise"], t=ref["train_t"])["loss"].backward()
        return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

    plain, ckpt = grads(False), grads(True)
    assert plain.keys() == ckpt.keys() and len(plain) > 100
    assert max(max_diff(plain[k], ckpt[k]) for k in plain) < 1e-5


def test_lora_on_the_dit_merges_back(ckpt_dir, nopad):
    from omegaconf import OmegaConf

    from gr00t_exp.model import load_pretrained
    from gr00t_exp.model.config import ModelConfig
    from gr00t_exp.model.tuning import apply_tuning, merge_lora

    m = load_pretrained(ckpt_dir)
    cfg = OmegaConf.structured(ModelConfig)
    cfg.lora.rank = 4
    apply_tuning(m, cfg)
    m.eval()  # the injected adapters' dropout modules start in training mode
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable if n.startswith("action_head.model."))
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.01)
    batch, ref = nopad
    with torch.no_grad():
        before = m.get_action(batch, init_noise=ref["infer_init_noise"])["action_pred"]
        merge_lora(m)
        after = m.get_action(batch, init_noise=ref["infer_init_noise"])["action_pred"]
    assert max_diff(before, after) < 1e-5 and max_diff(after, ref["action_pred"]) > 1e-4
    assert not any(".lora_" in k for k in m.state_dict())


def test_config_json_written_as_the_reference_does(ckpt_dir):
    """Only non-default fields (+ the always-written ones): the fixture's config.json exactly; the
    full config reduces to the fields released checkpoints change from the class defaults."""
    from gr00t_exp.model.n16.config import Gr00tN16Config, load_preset

    tiny = json.loads((ckpt_dir / "config.json").read_text())
    assert Gr00tN16Config.from_hub_dicts(tiny, load_preset("gr00t_n16_tiny")[1]).to_hub_dict() == tiny
    full = json.loads((ckpt_dir / "config_full.json").read_text())
    written = Gr00tN16Config.from_hub_dicts(full).to_hub_dict()
    assert all(full[k] == v for k, v in written.items() if k in full)
    assert {"max_state_dim", "max_action_dim", "action_horizon", "state_dropout_prob"} <= set(written)
    assert "select_layer" not in written and "diffusion_model_cfg" not in written  # class defaults
