"""After `fit`: export the last and the best weights in the GR00T hub layout (rank 0 only)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint

from gr00t_exp.model import tuning
from gr00t_exp.train.checkpoint import dataset_identity, export_hub
from gr00t_exp.train.metadata import build_metadata

log = logging.getLogger(__name__)


def exportable(model: torch.nn.Module) -> torch.nn.Module:
    """The model as it should be saved: LoRA adapters merged into a copy (the live model keeps them)."""
    if not tuning.has_lora(model):
        return model
    return tuning.merge_lora(copy.deepcopy(model))


def run_metadata(cfg: DictConfig, inner: Any, metas: list[Any]) -> dict:
    """Statistics of the first source (as upstream; a mixture's are merged by the data module)."""
    inner.setup("fit")
    return build_metadata(cfg.embodiment, inner.metas[0], inner.stats[0])


def run_processor_files(inner: Any) -> dict | None:
    """A GR00T N1.6 run's processor files (processor_config.json, statistics.json,
    embodiment_id.json); None for N1.5, whose normalisation lives in metadata.json."""
    files = getattr(inner, "processor_files", None)
    return files() if callable(files) else None


def export_run(
    cfg: DictConfig,
    lit: Any,
    best: ModelCheckpoint | None,
    inner: Any,
    metas: list[Any],
    roots: list[Path],
    out_dir: Path,
    value: float,
) -> dict[str, Path]:
    t = cfg.trainer
    metadata = run_metadata(cfg, inner, metas)
    files = run_processor_files(inner)
    extra = {"dataset": dataset_identity(roots), "step": int(lit.global_step), t.monitor: value}
    exports: dict[str, Path] = {}
    if t.export_last:
        exports["last"] = export_hub(
            exportable(lit.model), out_dir / "export" / "last", metadata, cfg, extra, processor_files=files
        )
    best_path = best.best_model_path if best is not None else ""
    if t.export_best and best_path and Path(best_path).is_file():
        live = {k: v.detach().clone() for k, v in lit.state_dict().items()}
        ckpt = torch.load(best_path, map_location="cpu", weights_only=False)
        lit.load_state_dict(ckpt["state_dict"], strict=not lit.trainable_only_ckpt)
        score = best.best_model_score
        extra_best = dict(extra, step=int(ckpt.get("global_step", -1)))
        extra_best[t.monitor] = float(score) if score is not None else None
        exports["best"] = export_hub(
            exportable(lit.model),
            out_dir / "export" / "best",
            metadata,
            cfg,
            extra_best,
            processor_files=files,
        )
        lit.load_state_dict(live)  # back to the last weights (the eval after fit uses them)
    return exports
