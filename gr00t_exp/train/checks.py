"""Pre-flight checks: everything that can be known wrong before the first training step.

Each failure raises PreflightError whose message names the key / file and the fix, so a run that
cannot work stops in seconds instead of after model loading or mid-epoch.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from gr00t_exp.data.n16.relative_stats import RelativeStatsError, check_relative_keys
from gr00t_exp.embodiment import EmbodimentLayout, family_of, projector_table

log = logging.getLogger(__name__)


class PreflightError(ValueError):
    pass


def check_trainer(cfg: DictConfig) -> None:
    t = cfg.trainer
    if t.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise PreflightError(
            f"trainer.accelerator={t.accelerator} but no CUDA device is visible; use trainer=cpu "
            "(or check CUDA_VISIBLE_DEVICES / the driver)"
        )
    if t.max_steps <= 0:
        raise PreflightError(f"trainer.max_steps={t.max_steps}: must be positive")
    if t.accumulate_grad_batches < 1:
        raise PreflightError("trainer.accumulate_grad_batches must be >= 1")
    if t.ckpt_weights not in ("auto", "all", "trainable"):
        raise PreflightError(f"trainer.ckpt_weights={t.ckpt_weights!r}: use auto, all or trainable")
    if t.monitor_mode not in ("min", "max"):
        raise PreflightError(f"trainer.monitor_mode={t.monitor_mode!r}: use min or max")
    if t.progress_bar not in ("rich", "tqdm", "none"):
        raise PreflightError(f"trainer.progress_bar={t.progress_bar!r}: use rich, tqdm or none")
    if cfg.data.batch_size < 1:
        raise PreflightError(f"data.batch_size={cfg.data.batch_size}: must be >= 1")


def dataset_roots(cfg: DictConfig) -> list[Path]:
    """The dataset directories of the run (the synthetic one is written by the data module)."""
    if cfg.data.kind == "synthetic":
        return [Path(cfg.data.synthetic.out_dir)]
    if OmegaConf.is_missing(cfg.data, "sources"):
        raise PreflightError(
            "data.sources is not set: give at least one dataset, e.g. "
            "python run.py experiment=g1_inspire 'data.sources=[{path:/data/my_ds}]'"
        )
    if not cfg.data.sources:
        raise PreflightError(
            "data.sources is empty: give at least one dataset, e.g. "
            "python run.py data=lerobot 'data.sources=[{path:/data/my_ds}]'"
        )
    roots = []
    for i, src in enumerate(cfg.data.sources):
        p = Path(str(src.path)).expanduser()
        if p.is_file():
            raise PreflightError(
                f"data.sources[{i}].path={src.path} is a file, not a dataset directory; point it at the "
                "dataset root (the folder holding meta/info.json)"
            )
        if not p.is_dir():
            raise PreflightError(
                f"data.sources[{i}].path={src.path}: no such directory; point it at a LeRobot dataset root "
                "(the folder holding meta/info.json)"
            )
        if not (p / "meta" / "info.json").is_file():
            raise PreflightError(
                f"data.sources[{i}].path={src.path}: meta/info.json is missing, so this is not a LeRobot "
                "dataset root; point it at the folder holding meta/"
            )
        roots.append(p)
    return roots


def check_datasets(cfg: DictConfig, roots: list[Path]) -> list[Any]:
    """Load and check each dataset's metadata against the embodiment (keys present, layout sane)."""
    from gr00t_exp.data.errors import DatasetError
    from gr00t_exp.data.meta import load_meta

    metas = []
    for i, root in enumerate(roots):
        try:
            metas.append(load_meta(root, cfg.embodiment))
        except DatasetError as e:
            # Only key mismatches are about the embodiment; anything else is the dataset's own problem.
            fit = e.issues and all(i.check.startswith("embodiment.") for i in e.issues)
            what = f"does not fit embodiment={cfg.embodiment.name}" if fit else "cannot be read"
            raise PreflightError(f"dataset data.sources[{i}] ({root}) {what}:\n{e}") from e
    return metas


def check_data(metas: list[Any]) -> None:
    """The data itself, before step 1: finite values, row counts vs the episode list, unlisted
    episodes, timestamps vs fps, every video opens and decodes its first and last frame, frame
    counts and fps vs info.json (mode=validate's cheap checks). Each error names file and fix."""
    from gr00t_exp.data.tools.validate import data_checks

    for meta in metas:
        t0 = time.perf_counter()
        errors = [i for i in data_checks(meta) if i.severity == "error"]
        log.info("pre-flight data checks of %s: %.1f s", meta.root, time.perf_counter() - t0)
        if errors:
            shown = "\n".join(f"  - {i}" for i in errors[:20])
            more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
            raise PreflightError(
                f"dataset {meta.root} has {len(errors)} data error(s); training would skip, repeat or "
                f"crash on them:\n{shown}{more}\n(python run.py mode=validate tools.dataset={meta.root} "
                "writes the full report)"
            )


# Margin beyond the checkpoints' own size (logs, exports). Without room a checkpoint write fails
# mid-way and torch's zip writer reports `[enforce fail at inline_container.cc]`, not "disk full".
MIN_FREE_BYTES = 64 << 20


def check_output_dirs(dirs: list[Path], need_bytes: int = MIN_FREE_BYTES) -> None:
    """Each run directory can be created, written and has `need_bytes` free."""
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=d, prefix=".write-test-"):
                pass
        except OSError as e:
            raise PreflightError(
                f"{d} is not writable ({e.strerror or e}); set hydra.run.dir (or paths.output_dir) to a "
                "writable folder"
            ) from None
        free = shutil.disk_usage(d).free
        if free < need_bytes:
            raise PreflightError(
                f"{d} has {free / 2**30:.2f} GiB free, less than the {need_bytes / 2**30:.2f} GiB a checkpoint "
                "needs; free space there or point hydra.run.dir at another disk"
            )


def checkpoint_bytes(model: torch.nn.Module, trainable_only: bool) -> int:
    """About what one checkpoint takes: fp32 weights (all or trainable) + AdamW's two moments."""
    params = [p for p in model.parameters() if p.requires_grad or not trainable_only]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    weights = sum(p.numel() * p.element_size() for p in params)
    return int(weights + 2 * 4 * trainable)


def check_embodiment_fits_model(cfg: DictConfig, metas: list[Any], model_cfg: Any | None = None) -> None:
    """State/action widths, padding, horizon and the embodiment tag against the built model.

    `model_cfg`: the model's Gr00tN15Config (None = only the embodiment's own limits are checked).
    """
    emb = cfg.embodiment
    head = getattr(model_cfg, "action_head_cfg", None)
    max_state = int(head.max_state_dim) if head is not None else int(emb.max_state_dim)
    max_action = int(head.action_dim) if head is not None else int(emb.max_action_dim)
    horizon = int(head.action_horizon) if head is not None else None
    for meta in metas:
        layout = EmbodimentLayout.from_meta(emb, meta)
        sw, aw = layout.width("state"), layout.width("action")
        if sw > max_state:
            raise PreflightError(
                f"embodiment={emb.name}: the state keys are {sw} wide but the model takes at most {max_state} "
                "(max_state_dim); drop state keys from embodiment.state_keys"
            )
        if aw > max_action:
            raise PreflightError(
                f"embodiment={emb.name}: the action keys are {aw} wide but the model outputs at most "
                f"{max_action} (its action_dim; model.max_action_dim={cfg.model.max_action_dim}); drop action "
                "keys from embodiment.action_keys or use a model with a wider action_dim"
            )
    if head is not None and int(emb.max_action_dim) != max_action:
        raise PreflightError(
            f"embodiment.max_action_dim={emb.max_action_dim} (the width actions are padded to) differs from the "
            f"model's action_dim={max_action} (model.max_action_dim); set both to the same value"
        )
    if head is not None and int(emb.max_state_dim) != max_state:
        raise PreflightError(
            f"embodiment.max_state_dim={emb.max_state_dim} differs from the model's max_state_dim={max_state}; "
            "set embodiment.max_state_dim to it"
        )
    if horizon is not None and len(emb.action_indices) != horizon:
        raise PreflightError(
            f"embodiment.action_indices has {len(emb.action_indices)} steps but the model's action_horizon is "
            f"{horizon}; set embodiment.action_indices to {horizon} steps (or model.action_horizon)"
        )
    tag = emb.embodiment_tag
    family = family_of(str(cfg.model.name))
    known = projector_table(family)
    if cfg.model.base_model_path and tag not in known:
        raise PreflightError(
            f"embodiment.embodiment_tag={tag!r} has no projector in the pretrained {family} checkpoint; "
            f"use new_embodiment for a new robot (or one of: {', '.join(sorted(known))})"
        )


def check_eval_horizon(cfg: DictConfig) -> None:
    idx = list(cfg.embodiment.action_indices)
    if idx != list(range(len(idx))):
        raise PreflightError(
            f"embodiment.action_indices={idx}: open-loop evaluation needs consecutive steps 0..N-1"
        )


def check_relative_actions(cfg: DictConfig, metas: list[Any], n16: bool) -> None:
    """`embodiment.relative_action_keys` (GR00T N1.6): each key is an action key with a same-width
    state key in every dataset (the relative statistics are computed from the pair)."""
    keys = [str(k).removeprefix("action.") for k in (cfg.embodiment.get("relative_action_keys") or [])]
    if not keys:
        return
    if not n16:
        raise PreflightError(
            f"embodiment.relative_action_keys={keys} is a GR00T N1.6 setting but model={cfg.model.name} is "
            "N1.5; fine-tune with model=gr00t_n16, or clear it (N1.5 reads relative keys from modality.json's "
            "absolute: false)"
        )
    for meta in metas:
        try:
            check_relative_keys(EmbodimentLayout.from_meta(cfg.embodiment, meta), keys, str(meta.root))
        except RelativeStatsError as e:
            raise PreflightError(str(e)) from None
