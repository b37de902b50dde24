"""Checkpoint I/O: hub layout round trips, sharding, atomic writes, metadata, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from gr00t_exp.model import CheckpointError, load_pretrained, save_pretrained

from ._model_refdata import TINY, load, max_diff, needs_refdata

pytestmark = needs_refdata

METADATA = {
    "new_embodiment": {
        "statistics": {"state": {"arm": {"mean": [0.0], "std": [1.0]}}, "action": {}},
        "modalities": {"state": {"arm": {"absolute": True, "rotation_type": None, "shape": [1]}}},
        "embodiment_tag": "new_embodiment",
    }
}


@pytest.fixture(scope="module")
def tiny():
    return load_pretrained(TINY)


@pytest.fixture(scope="module")
def nopad():
    return load("inputs_nopad"), load("outputs_nopad")


def _copy_fixture(dst: Path, with_eagle: bool = True) -> Path:
    dst.mkdir()
    for name in ("config.json", "model.safetensors") + (("eagle_config.json",) if with_eagle else ()):
        shutil.copy(TINY / name, dst / name)
    return dst


def test_sharded_round_trip_is_exact(tiny, nopad, tmp_path):
    inputs, ref = nopad
    out = save_pretrained(tiny, tmp_path / "ckpt", metadata=METADATA, max_shard_size=3_000_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all((out / s).is_file() for s in shards)
    assert shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert set(index["weight_map"]) == set(tiny.state_dict())
    assert json.loads((out / "experiment_cfg" / "metadata.json").read_text()) == METADATA
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "gr00t_n1_5" and config["torch_dtype"] == "float32"
    assert config["backbone_cfg"] == json.loads((TINY / "config.json").read_text())["backbone_cfg"]
    assert json.loads((out / "eagle_config.json").read_text()) == json.loads(
        (TINY / "eagle_config.json").read_text()
    )

    back = load_pretrained(out)
    assert back.metadata == METADATA
    for k, v in tiny.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    act = back.get_action(inputs, init_noise=ref["infer_init_noise"])["action_pred"]
    assert max_diff(act, ref["action_pred"]) < 1e-5


def test_single_file_bf16_save_and_load_dtype(tiny, tmp_path):
    out = save_pretrained(tiny, tmp_path / "bf16", dtype="bfloat16")
    assert (out / "model.safetensors").is_file() and not (out / "model.safetensors.index.json").exists()
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    as_stored = load_pretrained(out, dtype=None)
    assert as_stored.dtype == torch.bfloat16
    rope = as_stored.backbone.eagle_model.language_model.model.rotary_emb
    assert rope.inv_freq.dtype == torch.float32  # RoPE frequencies are never downcast
    upcast = load_pretrained(out, dtype="float32")
    assert upcast.dtype == torch.float32


def test_save_overwrites_atomically_and_leaves_no_temp(tiny, tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    save_pretrained(tiny, target)
    assert not (target / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_failed_save_keeps_the_previous_checkpoint(tiny, tmp_path, monkeypatch):
    import gr00t_exp.model.checkpoint as ck

    target = save_pretrained(tiny, tmp_path / "ckpt", metadata=METADATA)
    before = sorted(p.name for p in target.iterdir())

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_pretrained(tiny, target)
    assert sorted(p.name for p in target.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_metadata_defaults_to_the_loaded_one(tiny, tmp_path):
    first = save_pretrained(tiny, tmp_path / "a", metadata=METADATA)
    second = save_pretrained(load_pretrained(first), tmp_path / "b")
    assert json.loads((second / "experiment_cfg" / "metadata.json").read_text()) == METADATA


def test_missing_eagle_config_falls_back_to_defaults(tmp_path):
    """The tiny weights cannot fit the 3B defaults: the error says where the sizes came from."""
    ckpt = _copy_fixture(tmp_path / "noeagle", with_eagle=False)
    with pytest.raises(CheckpointError) as e:
        load_pretrained(ckpt)
    msg = str(e.value)
    assert "N1.5 defaults" in msg and "eagle_config.json" in msg


def test_defaults_mismatch_names_the_tensor(tmp_path):
    """A config consistent with the 3B backbone but tiny weights: the first bad tensor is named."""
    ckpt = _copy_fixture(tmp_path / "noeagle", with_eagle=False)
    config = json.loads((ckpt / "config.json").read_text())
    ah = config["action_head_cfg"]
    ah["backbone_embedding_dim"] = ah["diffusion_model_cfg"]["cross_attention_dim"] = 2048
    ah["vl_self_attention_cfg"]["attention_head_dim"] = 1024
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as e:
        load_pretrained(ckpt)
    msg = str(e.value)
    assert "N1.5 defaults" in msg
    assert (
        "shape mismatch: action_head.model.transformer_blocks.0.attn1.to_k.weight: "
        "checkpoint [64, 32], model expects [64, 2048]"
    ) in msg
    assert "tensors missing from the checkpoint" in msg  # 27 SigLIP layers expected, 2 stored


def test_wrong_eagle_size_names_tensor_and_source(tmp_path):
    ckpt = _copy_fixture(tmp_path / "bad")
    eagle = json.loads((ckpt / "eagle_config.json").read_text())
    eagle["vision_config"]["intermediate_size"] = 96
    (ckpt / "eagle_config.json").write_text(json.dumps(eagle))
    with pytest.raises(CheckpointError) as e:
        load_pretrained(ckpt)
    msg = str(e.value)
    assert "encoder.layers.0.mlp.fc1.weight: checkpoint [128, 64], model expects [96, 64]" in msg
    assert str(ckpt / "eagle_config.json") in msg


def test_missing_and_unexpected_tensors_are_reported(tiny, tmp_path):
    from safetensors.torch import save_file

    sd = {k: v.clone() for k, v in tiny.state_dict().items()}
    sd.pop("action_head.vlln.weight")
    sd["action_head.extra.weight"] = torch.zeros(1)
    sd["backbone.eagle_model.language_model.lm_head.weight"] = torch.zeros(1)  # tied alias: ignored
    ckpt = _copy_fixture(tmp_path / "keys")
    save_file(sd, str(ckpt / "model.safetensors"))
    with pytest.raises(CheckpointError) as e:
        load_pretrained(ckpt)
    msg = str(e.value)
    assert "action_head.vlln.weight" in msg and "action_head.extra.weight" in msg
    assert "lm_head" not in msg.split("Fix:")[0]


def test_lm_head_in_a_checkpoint_is_ignored(tiny, tmp_path):
    from safetensors.torch import save_file

    sd = {k: v.clone() for k, v in tiny.state_dict().items()}
    emb = sd["backbone.eagle_model.language_model.model.embed_tokens.weight"]
    sd["backbone.eagle_model.language_model.lm_head.weight"] = emb.clone()
    ckpt = _copy_fixture(tmp_path / "withhead")
    save_file(sd, str(ckpt / "model.safetensors"))
    model = load_pretrained(ckpt)
    assert not any("lm_head" in k for k in model.state_dict())


def test_nonexistent_local_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_pretrained(tmp_path / "nope" / "deeper")


def test_repo_id_offline_gives_a_clear_message(monkeypatch):
    import huggingface_hub

    calls = []

    def offline(repo_id, **kw):
        calls.append(kw.get("local_files_only", False))
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError) as e:
        load_pretrained("nvidia/GR00T-N1.5-3B")
    msg = str(e.value)
    assert "nvidia/GR00T-N1.5-3B" in msg and "model.base_model_path" in msg and "random_init" in msg
    assert calls == [True, False]  # cache first, then the network


def test_repo_id_resolves_through_the_hub_cache(monkeypatch, nopad):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: str(TINY))
    model = load_pretrained("someone/tiny-gr00t")
    assert model.config.backbone_cfg.select_layer == 2


def test_lora_adapters_are_merged_on_save(tiny, nopad, tmp_path):
    peft = pytest.importorskip("peft")
    import copy

    inputs, ref = nopad
    model = copy.deepcopy(tiny)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_v"], init_lora_weights=False)
    model = peft.inject_adapter_in_model(cfg, model)
    with torch.no_grad():
        expected = model.get_action(inputs, init_noise=ref["infer_init_noise"])["action_pred"]
    assert max_diff(expected, ref["action_pred"]) > 1e-4  # the adapters change the output
    out = save_pretrained(model, tmp_path / "merged")
    back = load_pretrained(out)
    got = back.get_action(inputs, init_noise=ref["infer_init_noise"])["action_pred"]
    assert max_diff(got, expected) < 1e-5
