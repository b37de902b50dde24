"""The GR00T N1.6 side of the open-loop evaluation (eval/open_loop.py runs the loop and metrics).

N1.6 normalises with its processor files, predicts RELATIVE groups against the last observed
state and pads to its own chunk, so its episodes are prepared and decoded by the N1.6 processor:
the checkpoint's (processor_config.json, statistics.json) when evaluating an export, else the
run's own (the data module builds them from the dataset, as the export does). The dataset gives
raw samples; `N16Collator` makes the batch, `decode_action` gives absolute actions per chunk, so
the numbers are in dataset units exactly like N1.5's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from gr00t_exp.data.meta import DatasetMeta, load_meta
from gr00t_exp.data.n16.collate import N16Collator
from gr00t_exp.data.n16.datamodule import Gr00tN16DataModule
from gr00t_exp.data.stats import load_or_compute_stats
from gr00t_exp.embodiment import EmbodimentLayout
from gr00t_exp.model.batch import to_device
from gr00t_exp.model.n16.checkpoint import is_n16_checkpoint
from gr00t_exp.model.n16.processor import Gr00tN16Processor


@dataclass
class N16Setup:
    """What every evaluated episode needs (the N1.6 counterpart of open_loop._Setup)."""

    meta: DatasetMeta
    dataset: Any  # a Gr00tDataset returning raw samples
    collate: N16Collator
    layout: EmbodimentLayout
    baseline: np.ndarray  # the training mean per action dim (absolute units)
    processor: Gr00tN16Processor


def is_n16_eval(model: torch.nn.Module | None, checkpoint: str | Path | None) -> bool:
    """Whether the evaluated model is GR00T N1.6 (the built model's family, else the export's config)."""
    if model is not None:
        return getattr(model, "family", None) == "gr00t_n16"
    return checkpoint is not None and is_n16_checkpoint(Path(checkpoint))


def setup_n16(
    cfg: DictConfig,
    checkpoint: str | Path | None,
    choose_episodes: Callable[[DictConfig, DatasetMeta], list[int]],
) -> tuple[N16Setup, list[int]]:
    """The first source's raw dataset over the episodes `choose_episodes` picks, and the processor."""
    dm = Gr00tN16DataModule.from_config(cfg)
    root = dm.source_paths()[0][0]
    meta = load_meta(root, cfg.embodiment)
    episodes = choose_episodes(cfg, meta)
    if checkpoint is not None:
        processor = Gr00tN16Processor.from_pretrained(checkpoint)
    else:
        processor = dm.processor
    stats = load_or_compute_stats(meta, cfg.paths.cache_dir)
    ds = dm.dataset(meta, stats, episodes, training=False, frame_cache=dm.frame_cache())
    layout = EmbodimentLayout.from_meta(cfg.embodiment, meta)
    tag = layout.embodiment_tag
    if tag not in processor.state_action.statistics:
        raise KeyError(
            f"{processor.source}: statistics.json has no entry for embodiment {tag!r}; evaluate with the "
            "embodiment the checkpoint was fine-tuned on (embodiment=... / embodiment.embodiment_tag=...)"
        )
    action_stats = processor.state_action.statistics[tag]["action"]
    baseline = np.concatenate(
        [np.asarray(action_stats[k]["mean"], np.float64) for k in layout.keys("action")]
    )
    return N16Setup(meta, ds, N16Collator(processor, layout), layout, baseline, processor), episodes


def predict_episode_n16(
    cfg: DictConfig, model: torch.nn.Module, setup: N16Setup, ep: int, length: int, device: torch.device
) -> tuple[np.ndarray, list[int], float, float]:
    """open_loop._predict_episode for N1.6: (predicted actions (length, dims), chunk starts,
    normalised squared error sum over the real steps x dims, its count)."""
    lay = setup.layout
    horizon = lay.action_horizon
    starts = list(range(0, length, horizon))
    raws = setup.dataset.samples_at([(ep, s) for s in starts])
    batch = to_device(setup.collate(raws), device)
    cfg_m = model.config
    # Seeded per episode: the same checkpoint gives the same numbers.
    gen = torch.Generator().manual_seed(int(cfg.seed) * 100_003 + int(ep))
    init = torch.randn(len(starts), cfg_m.action_horizon, cfg_m.max_action_dim, generator=gen)
    with torch.no_grad():
        pred = model.get_action(batch, init_noise=init.to(device, model.dtype))["action_pred"]
    pred = pred.float().cpu().numpy()
    target = batch["action"].float().cpu().numpy()
    mask = batch["action_mask"].float().cpu().numpy()
    sse = float((((pred[..., : target.shape[-1]] - target) ** 2) * mask).sum())
    n = float(mask.sum())
    tag = lay.embodiment_tag
    chunks = []
    for i, raw in enumerate(raws):
        state = {s.key: raw[s.name] for s in lay.state}
        decoded = setup.processor.decode_action(tag, pred[i], state)
        chunks.append(
            np.concatenate([np.asarray(decoded[k], np.float64) for k in lay.keys("action")], axis=-1)
        )
    pred_seq = np.concatenate([chunks[i][: min(horizon, length - s)] for i, s in enumerate(starts)], axis=0)
    return pred_seq, starts, sse, n
