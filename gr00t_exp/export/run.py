"""`mode=export`: a trained checkpoint in a deployable form.

- `export.format=hub`: re-write a hub-layout checkpoint (LoRA merged, optional storage dtype such
  as bfloat16 to halve its size), keeping experiment_cfg/metadata.json.
- `export.format=onnx`: `backbone.onnx` + `action_head.onnx` checked against PyTorch with
  onnxruntime (see onnx_export.py), plus the checkpoint's config and metadata beside them.

`export.checkpoint` is a hub-layout directory (e.g. `<run>/export/last`) or a hub repo id; when
null the model is built from the `model` group (random init), which is how CI exercises the path.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from gr00t_exp.export.onnx_export import export_onnx
from gr00t_exp.model import build_model, load_pretrained, save_pretrained
from gr00t_exp.model.processor import Gr00tProcessor
from gr00t_exp.model.tuning import has_lora, merge_lora

log = logging.getLogger(__name__)


def load_model(cfg: DictConfig):
    """The model to export: from export.checkpoint, or built from cfg.model."""
    if cfg.export.checkpoint:
        model = load_pretrained(str(cfg.export.checkpoint), dtype=torch.float32)
    else:
        log.warning("export.checkpoint is null: exporting a model built from model=%s", cfg.model.name)
        model = build_model(cfg.model)
    if has_lora(model):
        model = merge_lora(model)
    return model.eval()


def sample_batch(model, num_views: int = 1, batch_size: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """A processor-made batch of random 224x224 images and a short instruction (for tracing)."""
    rng = np.random.default_rng(seed)
    proc = Gr00tProcessor.from_pretrained()
    images = [
        [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(num_views)]
        for _ in range(batch_size)
    ]
    batch = dict(proc(images, ["pick up the cube"] * batch_size))
    cfg = model.action_head.config
    batch["state"] = torch.from_numpy(
        rng.standard_normal((batch_size, 1, cfg.max_state_dim)).astype(np.float32)
    )
    batch["embodiment_id"] = torch.full((batch_size,), 31, dtype=torch.long)
    return batch


def _copy_metadata(src: str | None, out: Path) -> None:
    """Carry config.json / experiment_cfg/ of a local checkpoint next to the ONNX graphs."""
    if not src or not Path(src).is_dir():
        return
    for name in ("config.json", "eagle_config.json"):
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, out / name)
    if (Path(src) / "experiment_cfg").is_dir():
        shutil.copytree(Path(src) / "experiment_cfg", out / "experiment_cfg", dirs_exist_ok=True)


def run(cfg: DictConfig) -> int:
    exp = cfg.export
    out = Path(exp.output or Path(cfg.paths.output_dir) / f"export_{exp.format}")
    if exp.format not in ("hub", "onnx"):
        log.error("export.format=%s is unknown: use hub or onnx", exp.format)
        return 2
    try:
        model = load_model(cfg)
    except (FileNotFoundError, ValueError) as e:  # CheckpointError is a ValueError
        print(f"error: export.checkpoint: {e}. Pass a hub-layout directory such as <run>/export/last.")
        return 2
    if exp.format == "hub":
        path = save_pretrained(model, out, dtype=exp.dtype)
        src_meta = Path(str(exp.checkpoint or "")) / "experiment_cfg"
        if exp.checkpoint and src_meta.is_dir() and not (Path(path) / "experiment_cfg").is_dir():
            # GR00T N1.6's hub layout has no experiment_cfg/; keep this project's (the serving
            # layout and training config Gr00tPolicy reads) beside the processor files.
            shutil.copytree(src_meta, Path(path) / "experiment_cfg")
        print(f"exported hub checkpoint ({exp.dtype or 'same dtype'}) -> {path}")
        return 0

    batch = sample_batch(model, num_views=exp.num_views)
    manifest = export_onnx(
        model,
        batch,
        out,
        num_steps=int(cfg.model.num_inference_timesteps),
        opset=exp.opset,
        verify=exp.verify,
    )
    _copy_metadata(exp.checkpoint, out)
    print(json.dumps(manifest, indent=2))
    print(f"exported ONNX graphs -> {out}")
    return 0
