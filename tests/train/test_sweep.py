"""Sweeps: a 2-trial Optuna search and W&B offline logging, through run.py as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import fast_overrides

ROOT = Path(__file__).resolve().parents[2]


def _run_py(args: list[str], tmp_path: Path, timeout: int = 400) -> subprocess.CompletedProcess:
    env = dict(os.environ, PROJECT_ROOT=str(ROOT), WANDB_MODE="offline", WANDB_SILENT="true")
    return subprocess.run(
        [sys.executable, "run.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_optuna_sweep_two_trials_minimises_val_mse(cache_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = [
        *(o for o in fast_overrides(cache_dir, steps=2) if not o.startswith("data.batch_size=")),
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        # A small search space for the tiny model (the CLI replaces the config's ranges).
        "trainer.optim.lr=tag(log, interval(1e-4, 3e-3))",
        "model.lora.rank=choice(0, 4)",
        "data.batch_size=choice(2, 3)",
        "model.tune_diffusion_model=choice(true, false)",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = _run_py(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert isinstance(result["best_value"], float)
    assert set(result["best_params"]) >= {"trainer.optim.lr", "model.lora.rank", "data.batch_size"}
    trials = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(trials) == 2
    for t in trials:
        assert list((t / "checkpoints").glob("step=*.ckpt")), t


def test_wandb_offline_logger(cache_dir, tmp_path):
    out = tmp_path / "run"
    base = [o for o in fast_overrides(cache_dir, steps=2) if not o.startswith("logger=")]
    args = [*base, "logger=wandb", "logger.wandb.offline=true", f"hydra.run.dir={out}"]
    proc = _run_py(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((out / "wandb").glob("offline-run-*")), list(out.iterdir())
    assert list((out / "csv").glob("version_*/metrics.csv"))
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))


def test_ddp_two_cpu_processes(cache_dir, tmp_path):
    """trainer=ddp's path (Lightning DDP, our rank-sharded sampler) with 2 CPU processes (gloo)."""
    out = tmp_path / "ddp"
    args = [
        *fast_overrides(cache_dir, steps=2),
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        f"hydra.run.dir={out}",
    ]
    proc = _run_py(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "checkpoints" / "step=0000002.ckpt").is_file()
    assert (out / "export" / "last" / "config.json").is_file()
