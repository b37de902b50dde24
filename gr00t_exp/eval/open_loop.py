"""`python run.py mode=eval eval.checkpoint=<export dir>`: open-loop evaluation (upstream's
eval_policy.py, richer).

On held-out episodes (`eval.episodes`, default the DataModule's held-out split of the first source:
its last `data.val_episodes`; training episodes only when asked for, see `eval_episodes`), every `action_horizon` steps the model predicts an action chunk from the recorded observation at
that step; the chunks are unnormalised (with the checkpoint's own statistics when it has
experiment_cfg/metadata.json) and laid end to end, then compared with the recorded actions:
MSE / MAE per joint group and overall, the predict-the-training-mean baseline side by side, and the
jump at chunk boundaries. Writes metrics.json and one PNG per episode.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from gr00t_exp.data.collate import Gr00tCollator
from gr00t_exp.data.datamodule import Gr00tDataModule
from gr00t_exp.data.dataset import Gr00tDataset
from gr00t_exp.data.factory import split_episodes
from gr00t_exp.data.meta import DatasetMeta, load_meta
from gr00t_exp.data.stats import load_or_compute_stats
from gr00t_exp.embodiment import EmbodimentLayout
from gr00t_exp.eval.metrics import aggregate, episode_metrics, format_table
from gr00t_exp.eval.n16_open_loop import is_n16_eval, predict_episode_n16, setup_n16
from gr00t_exp.eval.plots import plot_episode
from gr00t_exp.model import load_pretrained

log = logging.getLogger(__name__)


class EvalEpisodesError(ValueError):
    """No episodes can be chosen: the split holds out none (and training episodes were not asked
    for) or leaves no training episodes."""


def _checkpoint_stats(checkpoint: Path | None, tag: str) -> dict | None:
    if checkpoint is None:
        return None
    p = Path(checkpoint) / "experiment_cfg" / "metadata.json"
    if not p.is_file():
        return None
    entry = json.loads(p.read_text()).get(tag)
    return entry.get("statistics") if isinstance(entry, dict) else None


def _device(cfg: DictConfig) -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu")


def _autocast(cfg: DictConfig, device: torch.device) -> Any:
    """The training precision's autocast (as validation runs): a model trained under bf16 autocast
    holds bf16 frozen weights next to fp32 trainable ones and only runs under autocast."""
    precision = str(cfg.trainer.precision)
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16") and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def eval_episodes(cfg: DictConfig, meta: DatasetMeta) -> list[int]:
    """The episodes to evaluate: `eval.episodes` when given (an explicit choice, training episodes
    included), else the DataModule's held-out split. With nothing held out (data.val_episodes=0)
    the model would be scored on data it trained on, so that needs eval.allow_train_episodes=true
    (then the last episode is evaluated)."""
    try:
        train_eps, held_out = split_episodes(cfg.data, meta)
    except ValueError as e:  # data.val_episodes leaves no training split: the same config error
        raise EvalEpisodesError(str(e)) from None
    explicit = [int(e) for e in cfg.eval.episodes]
    if explicit:
        seen = sorted(set(explicit) & set(train_eps))
        if seen:
            log.warning(
                "eval.episodes includes training episodes %s: their scores are not held-out scores", seen
            )
        return explicit
    if held_out:
        return held_out
    if bool(cfg.eval.allow_train_episodes):
        log.warning(
            "no held-out episodes (data.val_episodes=0): evaluating training episode %d", train_eps[-1]
        )
        return [train_eps[-1]]
    raise EvalEpisodesError(
        f"data.val_episodes={cfg.data.val_episodes} holds out no episode of {meta.root}, so the evaluation "
        "would score a training episode; set data.val_episodes to the value used in training (>= 1), "
        "or choose episodes with eval.episodes=[...], or accept it with eval.allow_train_episodes=true"
    )


@dataclass
class _Setup:
    """What every evaluated episode needs."""

    meta: DatasetMeta
    dataset: Gr00tDataset
    collate: Gr00tCollator
    layout: EmbodimentLayout
    baseline: np.ndarray  # the training mean per action dim: the predict-the-mean baseline


def _setup(cfg: DictConfig, checkpoint: str | Path | None) -> tuple[_Setup, list[int]]:
    """The first source's dataset (eval transforms) over the episodes to evaluate, normalised with
    the checkpoint's statistics when it has them."""
    emb = cfg.embodiment
    dm = Gr00tDataModule.from_config(cfg)
    root = dm.source_paths()[0][0]
    meta = load_meta(root, emb)
    episodes = eval_episodes(cfg, meta)
    stats = _checkpoint_stats(Path(checkpoint) if checkpoint else None, str(emb.embodiment_tag))
    stats = stats or load_or_compute_stats(meta, cfg.paths.cache_dir)
    ds = dm.dataset(meta, stats, episodes, training=False, frame_cache=dm.frame_cache())
    layout = EmbodimentLayout.from_meta(emb, meta)
    mean = ds.normalizer.stats["action"]
    baseline = np.concatenate([np.asarray(mean[k]["mean"], np.float64) for k in layout.keys("action")])
    return _Setup(meta, ds, Gr00tCollator(dm.processor), layout, baseline), episodes


def _ground_truth(setup: _Setup, ep: int, max_steps: int | None) -> np.ndarray:
    """The recorded actions of episode `ep` (steps, action dims), cut to `max_steps`."""
    layout = setup.layout
    data = setup.meta.read_episode(ep, layout.columns("action"))
    gt = np.concatenate(
        [
            np.asarray(data[s.column], np.float64).reshape(len(data[s.column]), -1)[:, s.column_slice]
            for s in layout.action
        ],
        axis=1,
    )
    return gt if max_steps is None else gt[: int(max_steps)]


def _predict_episode(
    cfg: DictConfig, model: torch.nn.Module, setup: _Setup, ep: int, length: int, device: torch.device
) -> tuple[np.ndarray, list[int], float, float]:
    """One chunk every action_horizon steps from the recorded observation, unnormalised and laid
    end to end: (predicted actions (length, dims), chunk starts, normalised squared error sum, count)."""
    horizon = setup.layout.action_horizon
    keys = setup.layout.keys("action")
    norm = setup.dataset.normalizer
    starts = list(range(0, length, horizon))
    samples = setup.dataset.samples_at([(ep, s) for s in starts])
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in setup.collate(samples).items()}
    # Seeded per episode: the same checkpoint gives the same numbers.
    gen = torch.Generator().manual_seed(int(cfg.seed) * 100_003 + int(ep))
    init = torch.randn(len(starts), horizon, batch["action"].shape[-1], generator=gen).to(device)
    with torch.no_grad(), _autocast(cfg, device):
        pred = model.get_action(batch, init_noise=init)["action_pred"].float().cpu().numpy()
    sse, n = 0.0, 0.0  # whole chunks in normalised units: what val/open_loop_mse measures
    if "action" in batch:
        target = batch["action"].float().cpu().numpy()
        mask = batch["action_mask"].cpu().numpy() if "action_mask" in batch else np.ones_like(target)
        sse = float((((pred[..., : target.shape[-1]] - target) ** 2) * mask).sum())
        n = float(mask.sum())
    width = sum(norm.width("action", k) for k in keys)
    raw = norm.unnormalize_action(pred[..., :width])
    chunks = np.concatenate([np.asarray(raw[f"action.{k}"], np.float64) for k in keys], axis=-1)
    pred_seq = np.concatenate([chunks[i, : min(horizon, length - s)] for i, s in enumerate(starts)], axis=0)
    return pred_seq, starts, sse, n


def _write_metrics(
    out: Path, summary: dict, per_ep: dict[int, dict], setup: _Setup, checkpoint: str | Path | None
) -> Path:
    """<out>/metrics.json: the summary, each episode's metrics and what was evaluated."""
    result = {
        "summary": summary,
        "episodes": {str(k): v for k, v in per_ep.items()},
        "checkpoint": str(checkpoint) if checkpoint else None,
        "dataset": str(setup.meta.root),
        "action_horizon": setup.layout.action_horizon,
        "units": "unnormalised (dataset units)",
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def evaluate(
    cfg: DictConfig,
    model: torch.nn.Module | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate `model` (or the hub export at `checkpoint`) and write metrics.json + plots to `out_dir`.

    Raises EvalEpisodesError when nothing is held out and training episodes were not asked for."""
    out = Path(out_dir or cfg.paths.output_dir)
    # GR00T N1.6 prepares and decodes episodes with its processor (eval/n16_open_loop.py).
    n16 = is_n16_eval(model, checkpoint)
    setup, episodes = setup_n16(cfg, checkpoint, eval_episodes) if n16 else _setup(cfg, checkpoint)
    if model is None:
        model = load_pretrained(checkpoint)
    device = _device(cfg)
    was_training, model_device = model.training, next(model.parameters()).device
    model.eval()
    model.to(device)
    groups = {s.key: s.vector_slice for s in setup.layout.action}
    dim_names = [f"{s.key}[{i}]" for s in setup.layout.action for i in range(s.require_width())]
    per_ep: dict[int, dict] = {}
    norm_sse, norm_n = 0.0, 0.0
    plots_dir = out / "plots"
    for ep in episodes:
        gt = _ground_truth(setup, ep, cfg.eval.max_steps_per_episode)
        predict = predict_episode_n16 if n16 else _predict_episode
        pred_seq, starts, sse, n = predict(cfg, model, setup, ep, len(gt), device)
        norm_sse, norm_n = norm_sse + sse, norm_n + n
        m = episode_metrics(pred_seq, gt, groups, starts, setup.baseline)
        per_ep[int(ep)] = m
        if cfg.eval.plot:
            plot_episode(
                gt,
                pred_seq,
                dim_names,
                starts,
                plots_dir / f"episode_{int(ep):06d}.png",
                title=f"episode {ep}: MSE {m['overall']['mse']:.4g} (mean baseline {m['baseline']['mse']:.4g})",
                baseline=setup.baseline,
            )
    model.to(model_device)
    model.train(was_training)
    summary = aggregate(per_ep)
    if norm_n > 0:
        summary["normalized_mse"] = norm_sse / norm_n
    metrics_path = _write_metrics(out, summary, per_ep, setup, checkpoint)
    log.info(
        "open-loop evaluation on episodes %s: MSE %.5g (mean baseline %.5g)",
        episodes,
        summary["overall"]["mse"],
        summary["baseline"]["mse"],
    )
    return {
        "summary": summary,
        "metrics_path": metrics_path,
        "plots_dir": plots_dir,
        "table": format_table(summary),
    }


def run(cfg: DictConfig) -> int:
    ckpt = cfg.eval.checkpoint
    if not ckpt:
        print(
            "error: eval.checkpoint is not set; give a hub-layout export, e.g. "
            "eval.checkpoint=outputs/demo/train/<date>/export/last",
            file=sys.stderr,
        )
        return 2
    if not (Path(ckpt) / "config.json").is_file() and not Path(ckpt).exists():
        print(
            f"error: eval.checkpoint={ckpt}: no such directory (want a dir with config.json)", file=sys.stderr
        )
        return 2
    try:
        result = evaluate(cfg, out_dir=cfg.paths.output_dir, checkpoint=ckpt)
    except EvalEpisodesError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result["table"])
    print(f"metrics: {result['metrics_path']}\nplots:   {result['plots_dir']}")
    return 0
