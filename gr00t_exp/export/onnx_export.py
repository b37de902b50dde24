"""ONNX export of GR00T N1.5 as two graphs, checked against PyTorch with onnxruntime.

- `backbone.onnx`: eagle_input_ids (B, L), eagle_attention_mask (B, L), eagle_pixel_values
  (N_img, 3, 224, 224) -> backbone_features (B, L, D). SigLIP, connector and the truncated Qwen3.
- `action_head.onnx`: backbone_features (B, L, D), state (B, 1, 64), embodiment_id (B,),
  init_noise (B, H, A) -> action_pred (B, H, A). vlln + VL self-attention, then the whole
  denoising loop (its step count fixed at export) with the cross-attention K/V computed once.

Two graphs rather than upstream's seven: the loop inside one graph lets TensorRT / onnxruntime
fuse across steps, and the split at backbone_features is where a server caches nothing anyway.
Batch, sequence length and image count are dynamic axes.

onnxruntime is imported where the export is verified: it is the optional `deploy` extra.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.export import Dim

log = logging.getLogger(__name__)

BACKBONE_INPUTS = ("eagle_input_ids", "eagle_attention_mask", "eagle_pixel_values")
HEAD_INPUTS = ("backbone_features", "state", "embodiment_id", "init_noise")


class BackboneGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone

    def forward(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor) -> Tensor:
        batch = {
            "eagle_input_ids": input_ids,
            "eagle_attention_mask": attention_mask,
            "eagle_pixel_values": pixel_values,
        }
        return self.backbone(batch)["backbone_features"]


class ActionHeadGraph(nn.Module):
    def __init__(self, model: nn.Module, num_steps: int) -> None:
        super().__init__()
        self.head = model.action_head
        self.num_steps = int(num_steps)

    def forward(
        self, backbone_features: Tensor, state: Tensor, embodiment_id: Tensor, init_noise: Tensor
    ) -> Tensor:
        ctx = self.head.prepare(backbone_features, state, embodiment_id)
        action, _ = self.head.sample(ctx, embodiment_id, init_noise, self.num_steps)
        return action


@dataclass
class GraphReport:
    file: str
    inputs: list[str]
    outputs: list[str]
    max_abs_diff: float | None


def _export(
    module: nn.Module, args: tuple, path: Path, names: tuple[str, ...], output: str, dims: tuple, opset: int
):
    module.eval()
    with torch.no_grad():
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=True,
            opset_version=opset,
            input_names=list(names),
            output_names=[output],
            dynamic_shapes=dims,
            optimize=True,
            verbose=False,
        )


def _check(path: Path, feeds: dict[str, np.ndarray], expected: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)[0]
    if got.shape != expected.shape:
        raise RuntimeError(f"{path.name}: onnxruntime output shape {got.shape} != PyTorch {expected.shape}")
    return float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max())


def export_onnx(
    model: nn.Module,
    sample: dict[str, Tensor],
    out_dir: str | Path,
    *,
    num_steps: int = 4,
    opset: int = 19,
    verify: bool = True,
    tolerance: float = 1e-3,
) -> dict:
    """Export `model` (a Gr00tN15 in float32 on CPU) to `out_dir`, verify, and write manifest.json.

    :param sample: a model batch (eagle_* keys, state, embodiment_id) used to trace and to verify.
    :return: the manifest (also written to out_dir/manifest.json).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    b = Dim("batch", min=1, max=256)
    seq = Dim("seq", min=2, max=8192)
    n_img = Dim("images", min=1, max=1024)

    bb_args = tuple(sample[k] for k in BACKBONE_INPUTS)
    bb_graph = BackboneGraph(model)
    with torch.no_grad():
        features = bb_graph(*bb_args)
    gen = torch.Generator().manual_seed(0)
    cfg = model.action_head.config
    noise = torch.randn(features.shape[0], cfg.action_horizon, cfg.action_dim, generator=gen)
    head_args = (features, sample["state"].float(), sample["embodiment_id"].long(), noise)
    head_graph = ActionHeadGraph(model, num_steps)
    with torch.no_grad():
        action = head_graph(*head_args)

    reports = []
    bb_path, head_path = out / "backbone.onnx", out / "action_head.onnx"
    _export(
        bb_graph,
        bb_args,
        bb_path,
        BACKBONE_INPUTS,
        "backbone_features",
        ({0: b, 1: seq}, {0: b, 1: seq}, {0: n_img}),
        opset,
    )
    _export(
        head_graph,
        head_args,
        head_path,
        HEAD_INPUTS,
        "action_pred",
        ({0: b, 1: seq}, {0: b}, {0: b}, {0: b}),
        opset,
    )
    for path, names, args, ref, output in (
        (bb_path, BACKBONE_INPUTS, bb_args, features, "backbone_features"),
        (head_path, HEAD_INPUTS, head_args, action, "action_pred"),
    ):
        diff = None
        if verify:
            diff = _check(path, {n: a.numpy() for n, a in zip(names, args, strict=True)}, ref.numpy())
            log.info("%s: max |onnxruntime - torch| = %.3g", path.name, diff)
            if diff > tolerance:
                raise RuntimeError(
                    f"{path.name}: onnxruntime differs from PyTorch by {diff:.3g} (> {tolerance})"
                )
        reports.append(GraphReport(path.name, list(names), [output], diff))

    manifest = {
        "format": "gr00t_exp.onnx/1",
        "opset": opset,
        "num_denoising_steps": int(num_steps),
        "action_horizon": int(cfg.action_horizon),
        "action_dim": int(cfg.action_dim),
        "graphs": [vars(r) for r in reports],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
