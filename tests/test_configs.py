"""Every experiment config composes and trains for a few steps on CPU with the tiny model
(as lightning-hydra-template does), so configs cannot rot. Downloads are overridden away:
synthetic data for the experiment's embodiment, the tiny random-init model, the CPU trainer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gr00t_exp.config.compose import CONF_DIR, compose_config

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))

FAST = [
    "data=synthetic",
    "model=gr00t_n15_tiny",
    "trainer=cpu",
    # Experiments that compile keep doing so: Dynamo traces the forward, the "eager" backend runs
    # the captured graph without AOT autograd or code generation (CI time).
    "model.compile_backend=eager",
    "logger=csv",
    "data.synthetic.episodes=3",
    "data.synthetic.min_length=17",
    "data.synthetic.max_length=20",
    "data.synthetic.height=32",
    "data.synthetic.width=32",
    "data.batch_size=2",
    "data.num_workers=0",
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "trainer.checkpoint_every_n_steps=2",
    "trainer.limit_val_batches=1",
    "trainer.progress_bar=none",
    "trainer.eval_after_fit=false",
    "trainer.export_best=false",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cfg_cache")


def test_experiments_exist():
    assert {"demo", "gr1_pick_place", "g1_inspire", "g1_inspire_lora"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_as_written(name):
    cfg = compose_config([f"experiment={name}"])
    assert cfg.task_name == name
    assert cfg.trainer.optim.betas == [0.95, 0.999]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_trains_a_few_steps(name, cache, tmp_path):
    from gr00t_exp.train.run import run

    # The tiny model of the experiment's own family (an N1.6 experiment's data path is N1.6's).
    family = compose_config([f"experiment={name}"]).model.name.removesuffix("_tiny")
    tiny = [f"model={family}_tiny"]
    cfg = compose_config(
        [f"experiment={name}", f"paths.cache_dir={cache}", *FAST, *tiny], output_dir=tmp_path
    )
    value = run(cfg)
    assert isinstance(value, float) and math.isfinite(value)
    assert list((tmp_path / "checkpoints").glob("step=*.ckpt"))
    assert (tmp_path / "export" / "last" / "config.json").is_file()


def test_g1_inspire_matches_upstream_recipe():
    cfg = compose_config(["experiment=g1_inspire"])
    assert cfg.embodiment.name == "unitree_g1_inspire_2cameras"
    assert cfg.embodiment.embodiment_tag == "new_embodiment"
    assert cfg.model.base_model_path == "nvidia/GR00T-N1.5-3B"
    assert cfg.model.tune_diffusion_model is False and cfg.model.tune_projector is True
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.data.batch_size == 32 and cfg.trainer.optim.lr == 1e-4
    assert cfg.model.compile is True
    lora = compose_config(["experiment=g1_inspire_lora"])
    assert lora.model.lora.rank == 64 and lora.model.lora.alpha == 128
