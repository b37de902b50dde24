"""`python run.py mode=train`: check, build, fit, export, evaluate; return the monitored metric.

Orchestration only; every piece lives in its own module (checks, factory, module, data, export).
Returns the final value of `trainer.monitor` (a float, for Hydra sweepers) on success, or a
non-zero int exit code when a pre-flight check fails.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig

from gr00t_exp.data.errors import DatasetError
from gr00t_exp.eval.open_loop import EvalEpisodesError, evaluate
from gr00t_exp.model.build import is_n16
from gr00t_exp.train import checks
from gr00t_exp.train.build import (
    build_datamodule,
    build_model_for_training,
    ckpt_trainable_only,
    compile_options,
)
from gr00t_exp.train.data import ResumableDataModule
from gr00t_exp.train.export import export_run
from gr00t_exp.train.factory import build_callbacks, build_loggers, build_trainer
from gr00t_exp.train.module import Gr00tLitModule
from gr00t_exp.train.resume import ResumeError, resolve_resume

log = logging.getLogger(__name__)


def _fail(msg: str) -> int:
    log.error(msg)
    print(f"error: {msg}", file=sys.stderr)
    return 2


def prepare(cfg: DictConfig):
    """Everything before `fit`: checks, data, model. Raises PreflightError / ResumeError."""
    checks.check_trainer(cfg)
    out_dir = Path(cfg.paths.output_dir)
    resume = resolve_resume(cfg.trainer.resume, out_dir, cfg.trainer.resume_dir)
    if cfg.data.kind != "synthetic":
        checks.dataset_roots(cfg)  # clear messages on bad paths before anything is built
    inner = build_datamodule(cfg)
    roots = [p for p, _ in inner.source_paths()]  # writes the synthetic dataset (once, cached)
    metas = checks.check_datasets(cfg, roots)
    checks.check_data(metas)
    checks.check_relative_actions(cfg, metas, is_n16(cfg.model))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model_for_training(cfg)
    checks.check_embodiment_fits_model(cfg, metas, getattr(model, "config", None))
    need = 2 * checks.checkpoint_bytes(model, ckpt_trainable_only(cfg))  # the new one + the previous
    checks.check_output_dirs([out_dir, out_dir / "checkpoints"], need + checks.MIN_FREE_BYTES)
    return out_dir, resume, inner, roots, metas, model


def run(cfg: DictConfig) -> int | float:
    try:
        out_dir, resume, inner, roots, metas, model = prepare(cfg)
    except (checks.PreflightError, ResumeError) as e:
        return _fail(str(e))

    lit = Gr00tLitModule(
        model,
        cfg.trainer.optim,
        total_steps=cfg.trainer.schedule_steps or cfg.trainer.max_steps,
        seed=cfg.seed,
        trainable_only_ckpt=ckpt_trainable_only(cfg),
        compile=compile_options(cfg),
    )
    callbacks, periodic, best = build_callbacks(cfg, out_dir / "checkpoints")
    trainer = build_trainer(cfg, callbacks, build_loggers(cfg))
    dm = ResumableDataModule(
        inner, seed=cfg.seed, accumulate_grad_batches=cfg.trainer.accumulate_grad_batches
    )
    try:
        trainer.fit(lit, datamodule=dm, ckpt_path=str(resume) if resume else None)
    except DatasetError as e:  # a file that broke mid-run: its name and episode, not a traceback
        return _fail(f"training stopped on a data error:\n{e}")

    metric = trainer.callback_metrics.get(cfg.trainer.monitor)
    value = float(metric) if metric is not None else math.nan
    if trainer.global_rank != 0:
        return value
    exports = export_run(cfg, lit, best, inner, metas, roots, out_dir, value)
    summary = [f"run directory:      {out_dir}", f"checkpoints:        {out_dir / 'checkpoints'}"]
    summary += [f"{'export (' + k + '):':<20}{p}" for k, p in exports.items()]
    summary.append(f"{cfg.trainer.monitor}: {value:.6f}")
    if cfg.trainer.eval_after_fit and "last" in exports:
        try:
            result = evaluate(cfg, model=lit.model, out_dir=out_dir / "eval")
        except EvalEpisodesError as e:  # the run itself succeeded: say why there is no evaluation
            log.warning("open-loop evaluation skipped: %s", e)
        else:
            summary += [
                f"open-loop metrics:  {result['metrics_path']}",
                f"plots:              {result['plots_dir']}",
            ]
            print(result["table"])
    print("\n".join(summary))
    return value
