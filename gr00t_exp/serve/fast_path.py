"""The serving fast path of `Gr00tPolicy` (docs/serving.md "Fast path").

`deploy.policy.fast_path`:
- `auto` (default): `cudagraph` on a CUDA device, `off` elsewhere (CPU tests keep the plain path);
- `cudagraph`: the whole `get_action` captured in CUDA graphs per input signature, eager kernels
  (model/inference.py; a capture costs a few eager calls);
- `compile`: Inductor kernels (torch.compile, minutes per signature at start-up) captured the same way;
- `off`: `model.get_action` as it is.

On a CUDA device the model also runs under bf16 autocast (`deploy.policy.autocast`, null = on with
CUDA) and the images are cropped, resized and normalised on the GPU (`deploy.policy.gpu_preprocess`,
null = on with CUDA): the raw uint8 views go to the device (~1.8 MB for two 480x640 views) instead
of being resized on the CPU; on a graphed path that crop / resize / normalisation is captured in
the same CUDA graph as the model (its time is part of the `model` timing). Start-up captures a graph for every batch size in
`deploy.policy.warmup_batch_sizes` with the embodiment's views (its start-up time is in the model
card and the log). `random_init_checkpoint` writes what serving needs besides weights (metadata with
unit statistics) so `deploy.policy.random_init=true` serves the full-size architecture without a
checkpoint, for benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gr00t_exp.data.transforms.video_batch import AUGMENT_KEY, VIDEO_KEY, BatchAugment
from gr00t_exp.embodiment import EmbodimentLayout, embodiment_config
from gr00t_exp.model.batch import to_device
from gr00t_exp.model.inference import GraphedGetAction

log = logging.getLogger(__name__)

FAST_PATH_MODES = ("auto", "off", "compile", "cudagraph")
WARMUP_INSTRUCTION = "pick up the apple and place it in the basket"
DEFAULT_WARMUP_SIZE = (480, 640)


def resolve_mode(mode: str, device: str) -> str:
    """`auto` -> `cudagraph` on CUDA, else `off`; graph modes on a CPU device are refused."""
    if mode not in FAST_PATH_MODES:
        raise ValueError(f"deploy.policy.fast_path={mode!r}: use one of {', '.join(FAST_PATH_MODES)}")
    cuda = str(device).startswith("cuda")
    if mode == "auto":
        return "cudagraph" if cuda else "off"
    if mode != "off" and not cuda:
        raise ValueError(
            f"deploy.policy.fast_path={mode} needs a CUDA device (deploy.policy.device={device}); "
            "use fast_path=auto or off on the CPU"
        )
    return mode


def _on_cuda(flag: bool | None, device: str) -> bool:
    return str(device).startswith("cuda") if flag is None else bool(flag)


class FastPath:
    """Runs `model.get_action` for the policy: graphed (cudagraph / compile) or plain, under bf16
    autocast or not. `__call__(batch, init_noise) -> action_pred (B, H, A)`. A batch of raw frames
    (`video` + `augment`, the deferred collate layout) is preprocessed on the device first, inside
    the graph on a graphed path; its tensors may still be on the host (the graph's input copies
    upload them)."""

    def __init__(
        self,
        model: nn.Module,
        mode: str = "auto",
        device: str = "cpu",
        num_steps: int | None = None,
        autocast: bool | None = None,
        max_graphs: int = 16,
    ) -> None:
        self.model = model
        self.device = str(device)
        self.mode = resolve_mode(mode, self.device)
        self.autocast = _on_cuda(autocast, self.device)
        if self.autocast and not self.device.startswith("cuda"):
            raise ValueError("deploy.policy.autocast=true needs a CUDA device (bf16 autocast)")
        self.num_steps = num_steps
        self.preprocess = BatchAugment()
        self.graphed = (
            GraphedGetAction(
                model,
                self.mode,
                num_steps,
                self.autocast,
                max_graphs,
                prepare=self.preprocess,
                prepare_keys=(VIDEO_KEY, AUGMENT_KEY),
            )
            if self.mode != "off"
            else None
        )
        self.startup: dict[str, Any] = {"fast_path": self.mode, "autocast": self.autocast}

    @contextlib.contextmanager
    def _amp(self) -> Iterator[None]:
        if self.autocast:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
        else:
            yield

    def __call__(self, batch: Mapping[str, Tensor], init_noise: Tensor | None = None) -> Tensor:
        if self.graphed is not None:
            return self.graphed(batch, init_noise)
        dev = self.model.device
        moved = to_device(dict(batch), dev, non_blocking=True)
        with torch.inference_mode():
            moved = self.preprocess(moved)
            with self._amp():
                return self.model.get_action(moved, init_noise=init_noise, num_steps=self.num_steps)[
                    "action_pred"
                ]


# ------------------------------------------------------------------------ GPU preprocessing
def eval_augment(video_transform: Any, batch: int, height: int, width: int) -> list[dict[str, Any]]:
    """Per-sample `augment` entries of the evaluation transform (centre crop, resize, no jitter),
    the layout the deferred (device-side) collate path takes (data/collate.py)."""
    ch, cw = video_transform.crop_size(height, width)
    p = video_transform.sample_params(batch, height, width)
    return [
        {
            "crop_h": ch,
            "crop_w": cw,
            "size": video_transform.resize,
            "top": p["top"][i].numpy(),
            "left": p["left"][i].numpy(),
        }
        for i in range(batch)
    ]


# -------------------------------------------------------------------------------- warm-up
def warmup_observation(spec: Any, batch_size: int, seed: int = 0) -> dict[str, Any]:
    """A flat observation of `batch_size` samples shaped by the policy's spec (random pixels and
    states): what start-up runs through the whole pipeline to capture the graphs."""
    rng = np.random.default_rng(seed)
    obs: dict[str, Any] = {}
    for key, size in spec.video.items():
        h, w = size or DEFAULT_WARMUP_SIZE
        obs[f"video.{key}"] = rng.integers(0, 256, (batch_size, spec.video_horizon, h, w, 3), dtype=np.uint8)
    for key, d in spec.state.items():
        obs[f"state.{key}"] = rng.standard_normal((batch_size, spec.state_horizon, d)).astype(np.float32)
    if spec.language_key:
        obs[spec.language_key] = [WARMUP_INSTRUCTION] * batch_size
    return obs


def warm_up(policy: Any, batch_sizes: list[int]) -> dict[str, Any]:
    """Run every batch size of `batch_sizes` through `policy.get_action_with_info` twice (the first
    captures / compiles, the second checks the replay); returns the start-up report."""
    report: dict[str, Any] = {"batch_sizes": list(batch_sizes), "per_batch_s": {}}
    t0 = time.perf_counter()
    for b in batch_sizes:
        obs = warmup_observation(policy.spec, int(b))
        t1 = time.perf_counter()
        policy.get_action_with_info(obs)
        first = time.perf_counter() - t1
        _, info = policy.get_action_with_info(obs)
        report["per_batch_s"][str(b)] = {
            "first_call_s": round(first, 3),
            "model_ms": round(info["timing_ms"]["model"], 3),
        }
    report["warmup_s"] = round(time.perf_counter() - t0, 3)
    return report


# --------------------------------------------------------------------- random-init serving
def _unit_stats(d: int) -> dict[str, list[float]]:
    return {
        "min": [-1.0] * d,
        "max": [1.0] * d,
        "mean": [0.0] * d,
        "std": [1.0] * d,
        "q01": [-1.0] * d,
        "q99": [1.0] * d,
    }


def random_init_checkpoint(
    embodiment: Any, out_dir: Path, image_size: list[int] | None = None, fps: float = 20.0
) -> Path:
    """`out_dir` with experiment_cfg/metadata.json for `embodiment` (unit statistics: min -1, max 1,
    mean 0, std 1; the embodiment config recorded as the training one) and no weights: what
    `Gr00tPolicy` reads from a checkpoint besides the model, so a random-init model can be served
    (benchmarks only: its actions mean nothing)."""
    from omegaconf import OmegaConf

    emb = embodiment_config(embodiment)
    layout = EmbodimentLayout.build(emb)
    if not layout.has_widths:
        raise ValueError(
            f"deploy.policy.random_init=true: embodiment '{layout.name}' has no `modality` layout to "
            "size its state/action keys"
        )
    h, w = (int(v) for v in image_size) if image_size else DEFAULT_WARMUP_SIZE
    modalities: dict[str, dict] = {"video": {}, "state": {}, "action": {}}
    statistics: dict[str, dict] = {"state": {}, "action": {}}
    for group in ("state", "action"):
        for spec in layout.specs(group):
            d = spec.require_width()
            statistics[group][spec.key] = _unit_stats(d)
            modalities[group][spec.key] = {
                "absolute": spec.absolute,
                "rotation_type": spec.rotation_type,
                "shape": [d],
                "continuous": spec.continuous,
            }
    for view in layout.video:
        vh, vw = view.size or (h, w)
        modalities["video"][view.key] = {"resolution": [int(vw), int(vh)], "channels": 3, "fps": fps}
    tag = str(layout.embodiment_tag)
    emb_plain = (
        OmegaConf.to_container(embodiment, resolve=True) if OmegaConf.is_config(embodiment) else embodiment
    )
    meta = {
        tag: {
            "statistics": statistics,
            "modalities": modalities,
            "embodiment_tag": tag,
            "gr00t_exp": {"config": {"embodiment": emb_plain}, "random_init": True},
        }
    }
    path = Path(out_dir) / "experiment_cfg" / "metadata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2))
    return Path(out_dir)


def random_init_policy(cfg: Any, **fast: Any) -> Any:
    """`deploy.policy.random_init=true`: a `Gr00tPolicy` over the `model` config's architecture with
    random weights (bf16 on CUDA) and `random_init_checkpoint` metadata for the embodiment, in a
    temporary directory. For benchmarks of the real model's speed (mode=bench bench=serve)."""
    import tempfile

    from omegaconf import OmegaConf

    from gr00t_exp.model.build import build_model
    from gr00t_exp.serve.policy import Gr00tPolicy, _resolve_device

    pc = cfg.deploy.policy
    device = _resolve_device(str(pc.device))
    mcfg = OmegaConf.merge(cfg.model, {"random_init": True})
    t0 = time.perf_counter()
    model = build_model(mcfg, device=device)
    model.to(torch.bfloat16 if device.startswith("cuda") else torch.float32).eval()
    build_s = time.perf_counter() - t0
    ckpt = random_init_checkpoint(
        cfg.embodiment, Path(tempfile.mkdtemp(prefix="gr00t_random_init_")), pc.image_size
    )
    policy = Gr00tPolicy(
        ckpt,
        embodiment=cfg.embodiment,
        denoising_steps=pc.denoising_steps,
        device=device,
        strict=pc.strict,
        model=model,
        **fast,
    )
    policy._card.update(random_init=True, build_s=round(build_s, 1))
    log.warning("serving a RANDOM-INIT model (deploy.policy.random_init=true): for benchmarks only")
    return policy
