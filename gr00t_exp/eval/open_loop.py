"""`python run.py mode=eval eval.checkpoint=<export dir>`: open-loop evaluation (upstream's
eval_policy.py, richer).

On held-out episodes (`eval.episodes`, default the last `data.val_episodes` of the first source),
every `action_horizon` steps the model predicts an action chunk from the recorded observation at
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from gr00t_exp.eval.metrics import aggregate, episode_metrics, format_table
from gr00t_exp.eval.plots import plot_episode

log = logging.getLogger(__name__)


def _short(key: str) -> str:
    return str(key).partition(".")[2]


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


def evaluate(
    cfg: DictConfig,
    model: torch.nn.Module | None = None,
    out_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate `model` (or the hub export at `checkpoint`) and write metrics.json + plots to `out_dir`."""
    from gr00t_exp.data.collate import Gr00tCollator
    from gr00t_exp.data.datamodule import Gr00tDataModule
    from gr00t_exp.data.dataset import Gr00tDataset
    from gr00t_exp.data.transforms import StateActionNormalizer
    from gr00t_exp.data.video import resolve_backend

    emb = cfg.embodiment
    out = Path(out_dir or cfg.paths.output_dir)
    dm = Gr00tDataModule.from_config(cfg)
    root = dm.source_paths()[0][0]
    from gr00t_exp.data.meta import load_meta
    from gr00t_exp.data.stats import load_or_compute_stats

    meta = load_meta(root, emb)
    stats = _checkpoint_stats(Path(checkpoint) if checkpoint else None, str(emb.embodiment_tag))
    stats = stats or load_or_compute_stats(meta, cfg.paths.cache_dir)
    all_eps = [e.index for e in meta.episodes]
    episodes = list(cfg.eval.episodes) or all_eps[len(all_eps) - max(1, int(cfg.data.val_episodes)) :]
    ds = Gr00tDataset(
        meta,
        emb,
        stats,
        episodes=episodes,
        training=False,
        video_backend=resolve_backend(str(cfg.data.video_backend)),
        frame_cache=dm.frame_cache(),
        timestamp_tolerance_s=float(cfg.data.timestamp_tolerance_s),
    )
    norm: StateActionNormalizer = ds.normalizer
    collate = Gr00tCollator(dm.processor)
    if model is None:
        from gr00t_exp.model import load_pretrained

        model = load_pretrained(checkpoint)
    device = _device(cfg)
    was_training = model.training
    model.eval()
    model_device = next(model.parameters()).device
    model.to(device)

    keys = [_short(k) for k in emb.action_keys]
    horizon = len(emb.action_indices)
    width = sum(norm.width("action", k) for k in keys)
    mod = meta.modality
    groups, dim_names, start = {}, [], 0
    for k in keys:
        w = mod.action[k].width
        groups[k] = slice(start, start + w)
        dim_names += [f"{k}[{i}]" for i in range(w)]
        start += w
    baseline = np.concatenate([np.asarray(norm.stats["action"][k]["mean"], np.float64) for k in keys])

    per_ep: dict[int, dict] = {}
    norm_sse, norm_n = 0.0, 0.0  # whole chunks in normalised units: what val/open_loop_mse measures
    plots_dir = out / "plots"
    for ep in episodes:
        cols = {mod.column("action", k) for k in keys}
        data = meta.read_episode(ep, sorted(cols))
        gt = np.concatenate(
            [
                np.asarray(data[mod.column("action", k)], np.float64).reshape(
                    len(data[mod.column("action", k)]), -1
                )[:, mod.action[k].start : mod.action[k].end]
                for k in keys
            ],
            axis=1,
        )
        length = (
            len(gt)
            if cfg.eval.max_steps_per_episode is None
            else min(len(gt), int(cfg.eval.max_steps_per_episode))
        )
        gt = gt[:length]
        starts = list(range(0, length, horizon))
        samples = ds.samples_at([(ep, s) for s in starts])
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in collate(samples).items()}
        gen = torch.Generator().manual_seed(int(cfg.seed) * 100_003 + int(ep))
        a_dim = batch["action"].shape[-1]
        init = torch.randn(len(starts), horizon, a_dim, generator=gen).to(device)
        with torch.no_grad(), _autocast(cfg, device):
            pred = model.get_action(batch, init_noise=init)["action_pred"].float().cpu().numpy()
        if "action" in batch:
            target = batch["action"].float().cpu().numpy()
            mask = batch["action_mask"].cpu().numpy() if "action_mask" in batch else np.ones_like(target)
            norm_sse += float((((pred[..., : target.shape[-1]] - target) ** 2) * mask).sum())
            norm_n += float(mask.sum())
        raw = norm.unnormalize_action(pred[..., :width])
        chunks = np.concatenate([np.asarray(raw[f"action.{k}"], np.float64) for k in keys], axis=-1)
        pred_seq = np.concatenate(
            [chunks[i, : min(horizon, length - s)] for i, s in enumerate(starts)], axis=0
        )
        m = episode_metrics(pred_seq, gt, groups, starts, baseline)
        per_ep[int(ep)] = m
        if cfg.eval.plot:
            plot_episode(
                gt,
                pred_seq,
                dim_names,
                starts,
                plots_dir / f"episode_{int(ep):06d}.png",
                title=f"episode {ep}: MSE {m['overall']['mse']:.4g} (mean baseline {m['baseline']['mse']:.4g})",
                baseline=baseline,
            )
    model.to(model_device)
    model.train(was_training)
    summary = aggregate(per_ep)
    if norm_n > 0:
        summary["normalized_mse"] = norm_sse / norm_n
    result = {
        "summary": summary,
        "episodes": {str(k): v for k, v in per_ep.items()},
        "checkpoint": str(checkpoint) if checkpoint else None,
        "dataset": str(root),
        "action_horizon": horizon,
        "units": "unnormalised (dataset units)",
    }
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(result, indent=2))
    table = format_table(summary)
    log.info(
        "open-loop evaluation on episodes %s: MSE %.5g (mean baseline %.5g)",
        episodes,
        summary["overall"]["mse"],
        summary["baseline"]["mse"],
    )
    return {"summary": summary, "metrics_path": metrics_path, "plots_dir": plots_dir, "table": table}


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
    result = evaluate(cfg, out_dir=cfg.paths.output_dir, checkpoint=ckpt)
    print(result["table"])
    print(f"metrics: {result['metrics_path']}\nplots:   {result['plots_dir']}")
    return 0
