"""GR00T N1.6 end to end on CPU with the tiny model: fine-tune -> N1.6 hub export -> Gr00tPolicy on
N1.6 nested observations -> ZeroMQ server speaking N1.6 -> mode=eval on the export; tuning
defaults, LoRA, and a relative key the dataset cannot support."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gr00t_exp.config.compose import compose_config
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.stats import compute_all_stats
from gr00t_exp.eval.open_loop import run as run_eval
from gr00t_exp.export.run import run as run_export
from gr00t_exp.model.n16.checkpoint import load_pretrained as load_n16
from gr00t_exp.model.n16.model import Gr00tN16
from gr00t_exp.model.tuning import has_lora
from gr00t_exp.serve.observation import parse_observation
from gr00t_exp.serve.policy import Gr00tPolicy
from gr00t_exp.serve.run import build_policy, build_server
from gr00t_exp.train.build import build_model_for_training
from tests.serve.upstream_client import UpstreamStyleClient

from .n16_run import n16_overrides, train_tiny_n16

ARMS, HANDS = ("left_arm", "right_arm"), ("left_hand", "right_hand")
STEPS = 3


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("n16_cache")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, cache) -> Path:
    out = tmp_path_factory.mktemp("n16_run")
    value = train_tiny_n16(out, cache, steps=STEPS)
    assert isinstance(value, float) and math.isfinite(value)
    return out


@pytest.fixture(scope="module")
def export(run_dir) -> Path:
    return run_dir / "export" / "last"


@pytest.fixture(scope="module")
def policy(export) -> Gr00tPolicy:
    return Gr00tPolicy(export, device="cpu")


def nested(policy: Gr00tPolicy, batch: int = 2, seed: int = 0) -> dict:
    """An observation as N1.6's PolicyClient sends it (gr00t_reference.md §6.4)."""
    rng = np.random.default_rng(seed)
    spec = policy.spec
    return {
        "video": {
            k: rng.integers(0, 256, (batch, 1, *(hw or (48, 64)), 3), dtype=np.uint8)
            for k, hw in spec.video.items()
        },
        "state": {k: rng.uniform(-0.5, 0.5, (batch, 1, d)).astype(np.float32) for k, d in spec.state.items()},
        "language": {spec.language_key: [["pick up the cup"]] * batch},
    }


def test_fine_tune_writes_the_n16_hub_layout(run_dir, export):
    rows = list(csv.DictReader(next((run_dir / "csv").glob("version_*/metrics.csv")).open()))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(losses) == STEPS and all(math.isfinite(v) for v in losses)
    assert (run_dir / "checkpoints" / f"step={STEPS:07d}.ckpt").is_file()
    for name in (
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "statistics.json",
        "embodiment_id.json",
    ):
        assert (export / name).is_file(), name
    proc = json.loads((export / "processor_config.json").read_text())
    assert proc["processor_class"] == "Gr00tN1d6Processor"
    kwargs = proc["processor_kwargs"]
    mods = kwargs["modality_configs"]["new_embodiment"]
    reps = {
        k: a["rep"]
        for k, a in zip(mods["action"]["modality_keys"], mods["action"]["action_configs"], strict=True)
    }
    assert reps == {
        "left_arm": "RELATIVE",
        "right_arm": "RELATIVE",
        "left_hand": "ABSOLUTE",
        "right_hand": "ABSOLUTE",
    }
    assert mods["video"]["modality_keys"] == ["cam_right_high", "cam_left_wrist"]
    assert mods["language"]["modality_keys"] == ["annotation.human.task_description"]
    assert kwargs["use_relative_action"] and kwargs["max_action_horizon"] == 50
    assert json.loads((export / "embodiment_id.json").read_text())["new_embodiment"] == 10

    stats = json.loads((export / "statistics.json").read_text())["new_embodiment"]
    assert set(stats["relative_action"]) == set(ARMS)
    rel = np.asarray(stats["relative_action"]["left_arm"]["mean"])
    assert rel.shape == (16, 7)  # one row per chunk step
    # Step 0 is a[t] - s[t]: the per-row relative statistics of data/stats.py.
    entry = json.loads((export / "experiment_cfg" / "metadata.json").read_text())["new_embodiment"]
    ds_root = Path(entry["gr00t_exp"]["dataset"][0]["path"])
    per_row = compute_all_stats(load_meta(ds_root))[1]["action.left_arm"]["mean"]
    np.testing.assert_allclose(rel[0], per_row, atol=1e-9)
    assert np.abs(np.asarray(stats["relative_action"]["left_arm"]["std"])[-1]).sum() > 0

    # The N1.6 loader (processor files required) loads it with the trained weights.
    model = load_n16(export, require_processor_files=True)
    assert isinstance(model, Gr00tN16) and set(model.metadata) == {
        "processor_config.json",
        "statistics.json",
        "embodiment_id.json",
    }
    sd = torch.load(run_dir / "checkpoints" / f"step={STEPS:07d}.ckpt", weights_only=False)["state_dict"]
    name, p = next((n, p) for n, p in model.named_parameters() if n.startswith("action_head.model"))
    assert torch.equal(p, sd[f"model.{name}"])


def test_tuning_defaults_are_upstream_n16_and_lora_adapts_the_dit(cache, tmp_path):
    cfg = compose_config(n16_overrides(cache), output_dir=tmp_path)
    model = build_model_for_training(cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    layers = model.backbone.model.language_model.model.layers
    top = {f"backbone.model.language_model.model.layers.{len(layers) - 1}."}
    assert any(n.startswith("action_head.model.") for n in trainable)  # the DiT
    assert any(n.startswith("action_head.state_encoder.") for n in trainable)  # projectors
    assert any(n.startswith(tuple(top)) for n in trainable)  # the top LLM layers
    assert not any(n.startswith("backbone.model.vision_model.") for n in trainable)
    assert not any(n.startswith("backbone.model.language_model.model.layers.0.") for n in trainable)

    lora_cfg = compose_config(
        n16_overrides(cache, extra=["model.lora.rank=4", "model.lora.alpha=8"]), output_dir=tmp_path
    )
    lora = build_model_for_training(lora_cfg)
    assert has_lora(lora)
    names = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert any(".lora_" in n and n.startswith("action_head.model.") for n in names)
    assert not any(n.startswith("action_head.model.") and ".lora_" not in n for n in names)


def test_policy_serves_n16_nested_observations(policy):
    assert policy.generation == "n1.6" and policy.model_card()["generation"] == "n1.6"
    assert policy.spec.relative_actions == {"left_arm": "left_arm", "right_arm": "right_arm"}
    obs = nested(policy)
    actions = policy.get_action(obs, {"seed": 3})
    assert set(actions) == {*ARMS, *HANDS}
    assert all(
        a.shape == (2, 16, 7) and a.dtype == np.float32 and np.isfinite(a).all() for a in actions.values()
    )
    again = policy.get_action(obs, {"seed": 3})
    assert all(np.array_equal(actions[k], again[k]) for k in actions)
    # Decoding: relative arms are taken against each sample's last observed state, hands are not.
    parsed = parse_observation(obs, policy.spec)
    pred = np.zeros((2, 50, 128), np.float32)
    base = policy.n16.decode(pred, parsed)
    parsed.state["left_arm"] = parsed.state["left_arm"] + 0.1
    moved = policy.n16.decode(pred, parsed)
    np.testing.assert_allclose(moved["left_arm"] - base["left_arm"], 0.1, atol=1e-5)
    np.testing.assert_array_equal(moved["left_hand"], base["left_hand"])
    # ... un-normalised with the checkpoint's statistics.json: min-max 0 is the middle of the range.
    hand = policy.statistics["action"]["left_hand"]
    mid = (np.asarray(hand["min"]) + np.asarray(hand["max"])) / 2
    np.testing.assert_allclose(base["left_hand"], np.broadcast_to(mid, (2, 16, 7)), atol=1e-5)


def test_mode_serve_speaks_n16_to_an_n16_client(cache, export, tmp_path):
    # mode=serve's own factories; deploy.server.protocol stays auto: the checkpoint's generation.
    serve = [
        "deploy=zmq",
        f"deploy.policy.checkpoint={export}",
        "deploy.policy.device=cpu",
        "deploy.server.port=0",
    ]
    cfg = compose_config(n16_overrides(cache) + ["mode=serve", *serve], output_dir=tmp_path)
    policy = build_policy(cfg)
    with build_server(cfg, policy) as srv:
        client = UpstreamStyleClient(srv.port, generation="n1.6")
        try:
            action, info = client.get_action_n16(nested(policy, batch=1))
            mc = client.get_modality_config()
        finally:
            client.close()
    assert set(action) == {*ARMS, *HANDS} and action["left_arm"].shape == (1, 16, 7)
    assert info["timing_ms"]["server"] >= 0
    # The N1.6 client's own ModalityConfig: bare keys, RELATIVE arms.
    assert mc["action"].modality_keys == [*ARMS, *HANDS]
    assert [a.rep.name for a in mc["action"].action_configs] == [
        "RELATIVE",
        "RELATIVE",
        "ABSOLUTE",
        "ABSOLUTE",
    ]


def test_mode_eval_on_the_n16_export(cache, export, tmp_path, capsys):
    overrides = n16_overrides(cache) + ["mode=eval", f"eval.checkpoint={export}"]
    assert run_eval(compose_config(overrides, output_dir=tmp_path)) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert math.isfinite(metrics["summary"]["overall"]["mse"])
    assert set(metrics["summary"]["groups"]) == {*ARMS, *HANDS}
    assert "model MSE" in capsys.readouterr().out


def test_relative_key_without_its_state_fails_before_training(cache, tmp_path, capsys):
    extra = ["embodiment.state_keys=[state.right_arm,state.left_hand,state.right_hand]"]
    assert train_tiny_n16(tmp_path, cache, extra=extra) == 2
    err = capsys.readouterr().err
    assert "action.left_arm" in err and "relative_action_keys" in err


def test_g1_inspire_n16_experiment_is_upstreams_n16_recipe():
    cfg = compose_config(["experiment=g1_inspire_n16"])
    assert cfg.model.name == "gr00t_n16" and cfg.model.base_model_path == "nvidia/GR00T-N1.6-3B"
    assert (
        cfg.embodiment.name == "unitree_g1_inspire_2cameras"
        and cfg.embodiment.embodiment_tag == "new_embodiment"
    )
    assert list(cfg.embodiment.relative_action_keys) == list(ARMS)
    m = cfg.model
    assert (m.tune_llm, m.tune_visual, m.tune_projector, m.tune_diffusion_model) == (False, False, True, True)
    assert cfg.trainer.accelerator == "gpu" and cfg.deploy.server.protocol == "auto"


def test_mode_export_hub_keeps_the_n16_processor_files_and_serving_layout(cache, export, tmp_path):
    out = tmp_path / "bf16"
    overrides = n16_overrides(cache) + [
        "mode=export",
        f"export.checkpoint={export}",
        "export.format=hub",
        "export.dtype=bfloat16",
        f"export.output={out}",
    ]
    assert run_export(compose_config(overrides, output_dir=tmp_path)) == 0
    for name in ("processor_config.json", "statistics.json", "embodiment_id.json"):
        assert json.loads((out / name).read_text()) == json.loads((export / name).read_text())
    assert (out / "experiment_cfg" / "metadata.json").is_file()
    assert Gr00tPolicy(out, device="cpu").generation == "n1.6"


def test_an_n16_checkpoint_with_only_its_processor_files_is_served(cache, export, tmp_path):
    # An upstream N1.6 fine-tune has no experiment_cfg/: its processor files describe the inputs,
    # and the serving embodiment config names the keys.
    bare_ckpt = tmp_path / "upstream_style"
    shutil.copytree(export, bare_ckpt, ignore=shutil.ignore_patterns("experiment_cfg"))
    with pytest.raises(ValueError, match="pass the serving embodiment"):
        Gr00tPolicy(bare_ckpt, device="cpu")
    cfg = compose_config(n16_overrides(cache), output_dir=tmp_path)
    policy = Gr00tPolicy(bare_ckpt, embodiment=cfg.embodiment, device="cpu")
    assert policy.generation == "n1.6" and policy.spec.state == {k: 7 for k in (*ARMS, *HANDS)}
    actions = policy.get_action(nested(policy, batch=1))
    assert actions["right_arm"].shape == (1, 16, 7)
