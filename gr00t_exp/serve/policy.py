"""Policies: `BasePolicy` (interface), `ConstantPolicy`, and `Gr00tPolicy` (a GR00T N1.5 checkpoint).

Gr00tPolicy serves an export in the hub layout. Everything that defines the model's inputs and
outputs comes from the checkpoint: normalisation statistics and modality layout from
experiment_cfg/metadata.json, the training embodiment config from this project's export entry
(`<tag>.gr00t_exp.config.embodiment`). A serving embodiment config that differs is refused with
the list of differences. Per request: validate (observation.py) -> eval video transform (centre
crop + resize, as training's eval path) -> normalise + pack + processor (the training pipeline's
own functions) -> model.get_action -> un-normalise per key -> relative keys made absolute with
the observed state. A GR00T N1.6 export (config.json model_type Gr00tN1d6) is served through its
processor files instead (serve/n16_inference.py: its normalisation, image pipeline and relative
decoding), and reports generation n1.6. torch is imported only when a Gr00tPolicy is built.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from gr00t_exp.embodiment import EmbodimentLayout, embodiment_config, prefixed
from gr00t_exp.serve.base import BasePolicy, ConstantPolicy
from gr00t_exp.serve.checkpoint_meta import (
    CheckpointMismatchError,
    canonical_hash,
    check_against_modalities,
    checkpoint_id,
    compare_embodiments,
    modality_from_metadata,
    read_metadata,
    video_sizes_from_metadata,
)
from gr00t_exp.serve.n16_inference import N16Inference, predict_n16
from gr00t_exp.serve.observation import Observation, ObservationSpec
from gr00t_exp.serve.protocol import N16, checkpoint_generation

__all__ = ["BasePolicy", "CheckpointMismatchError", "ConstantPolicy", "Gr00tPolicy"]

log = logging.getLogger(__name__)


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class Gr00tPolicy(BasePolicy):
    kind = "gr00t"

    def __init__(
        self,
        checkpoint: str | Path,
        embodiment_tag: str | None = None,
        embodiment: Any = None,
        denoising_steps: int | None = 4,
        device: str = "auto",
        strict: bool = True,
        dtype: str | None = None,
        fast_path: str = "off",
        autocast: bool | None = None,
        gpu_preprocess: bool | None = None,
        warmup_batch_sizes: list[int] | None = None,
        model: Any = None,
    ):
        """checkpoint: hub-layout export dir. embodiment: the serving EmbodimentConfig; required for
        upstream checkpoints (no training config inside), checked against ours when given.
        fast_path / autocast / gpu_preprocess / warmup_batch_sizes: see serve/fast_path.py (defaults
        here keep the plain path); model: an already built model to serve instead of the
        checkpoint's weights (deploy.policy.random_init)."""
        import torch

        from gr00t_exp.data.collate import Gr00tCollator
        from gr00t_exp.data.transforms import StateActionNormalizer, VideoTransform
        from gr00t_exp.model import load_pretrained
        from gr00t_exp.model.processor import Gr00tProcessor

        self.checkpoint = Path(checkpoint).expanduser()
        if not self.checkpoint.is_dir():
            raise FileNotFoundError(f"deploy.policy.checkpoint={checkpoint}: no such directory")
        self.embodiment_tag, entry = read_metadata(self.checkpoint, embodiment_tag)
        self.generation = checkpoint_generation(self.checkpoint)  # protocol=auto speaks this
        trained = (entry.get("gr00t_exp") or {}).get("config", {}).get("embodiment")
        if trained is not None and embodiment is not None:
            diffs = compare_embodiments(trained, embodiment)
            if diffs:
                raise CheckpointMismatchError(
                    f"the serving embodiment config does not match checkpoint {self.checkpoint}:\n  - "
                    + "\n  - ".join(diffs)
                    + "\nServe with the training embodiment (e.g. embodiment=<the one used to train>) "
                    "or set deploy.policy.check_embodiment=false to use the checkpoint's own."
                )
        emb_src = trained if trained is not None else embodiment
        if emb_src is None:
            raise ValueError(
                f"{self.checkpoint} carries no training embodiment config (an upstream checkpoint?): "
                "pass the serving embodiment (embodiment=<name>) so keys and normalisation are known"
            )
        emb = embodiment_config(emb_src)
        meta_source = f"{self.checkpoint}/experiment_cfg/metadata.json"
        problems = check_against_modalities(emb, entry, meta_source)
        if problems:
            raise CheckpointMismatchError("; ".join(problems))
        if str(emb.embodiment_tag) != self.embodiment_tag:
            raise CheckpointMismatchError(
                f"embodiment.embodiment_tag={emb.embodiment_tag!r} but the checkpoint entry is "
                f"{self.embodiment_tag!r}"
            )
        self.embodiment = emb
        # Widths, absolute flags and rotation types as the checkpoint recorded them.
        self.layout = EmbodimentLayout.build(
            emb,
            modality_from_metadata(entry, meta_source),
            video_sizes=video_sizes_from_metadata(entry),
            source=meta_source,
        )
        lay = self.layout
        self.statistics = entry["statistics"]
        self.normalizer = StateActionNormalizer(lay, self.statistics)
        self.video_transform = VideoTransform.from_config(lay.video_transform, training=False)
        self.video_keys = lay.keys("video")
        self.state_keys = lay.keys("state")
        self.action_keys = lay.keys("action")
        state_dims, action_dims = lay.widths("state"), lay.widths("action")
        # Relative action keys (absolute=false) become absolute with the same-named state key.
        relative: dict[str, str] = {}
        self.delta_keys: list[str] = []
        for spec in lay.action:
            if not spec.absolute:
                if state_dims.get(spec.key) == action_dims[spec.key]:
                    relative[spec.key] = spec.key
                else:
                    self.delta_keys.append(spec.key)  # no matching state: served as the model emits it
        # GR00T N1.6: normalisation, relative actions and the image pipeline come from the
        # checkpoint's processor files (n16_inference.py); metadata.json only lays out the keys.
        self.n16 = N16Inference(self.checkpoint, self.embodiment_tag, lay) if self.generation == N16 else None
        if self.n16 is not None:
            self.statistics = self.n16.statistics
            relative, self.delta_keys = dict(self.n16.relative_actions), []
        self.spec = ObservationSpec(
            video=lay.video_sizes(),
            state=state_dims,
            action=action_dims,
            language_key=prefixed("annotation", lay.language_key),
            video_horizon=lay.observation_horizon,
            state_horizon=lay.observation_horizon,
            action_horizon=lay.action_horizon,
            strict=strict,
            relative_actions=relative,
        )
        self.action_width = sum(self.normalizer.width("action", k) for k in self.action_keys)

        self.device = _resolve_device(device)
        if model is None:
            model = load_pretrained(
                self.checkpoint,
                dtype=dtype or ("bfloat16" if self.device.startswith("cuda") else "float32"),
                device=self.device,
                # N1.6 predicts its whole trained chunk; the embodiment's steps are taken on decoding.
                action_horizon=None if self.n16 is not None else self.spec.action_horizon,
            )
        self.model = model
        self.model.eval()
        self.denoising_steps = denoising_steps
        if self.n16 is None:  # N1.6 batches are made by its own processor (n16_inference.py)
            proc_dir = self.checkpoint if (self.checkpoint / "preprocessor_config.json").is_file() else None
            self.collate = Gr00tCollator(Gr00tProcessor.from_pretrained(proc_dir))
        self._torch = torch
        self._bb_ms = 0.0
        self._staging: dict[tuple[int, ...], Any] = {}  # pinned video buffers per shape
        self._hook_backbone()
        self._card = {
            "embodiment_tag": self.embodiment_tag,
            "normalization_hash": canonical_hash(self.statistics),
            "checkpoint_id": checkpoint_id(self.checkpoint),
            "checkpoint": str(self.checkpoint),
            "denoising_steps": denoising_steps,
            "device": self.device,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "delta_actions": list(self.delta_keys),
        }
        self._fast_setup(fast_path, autocast, gpu_preprocess, warmup_batch_sizes)

    def _fast_setup(self, mode: str, autocast: bool | None, gpu_pre: bool | None, sizes: list[int] | None):
        """The fast path (serve/fast_path.py): graphed get_action, autocast, device-side images,
        then the start-up warm-up, reported in the model card."""
        from gr00t_exp.serve.fast_path import FastPath, warm_up

        if getattr(self, "n16", None) is not None:
            # N1.6 preprocesses with its own processor on the CPU (n16_inference.py); its
            # get_action is graphed like N1.5's (the per-image pixel values stacked per batch).
            gpu_pre = False
        self.fast = FastPath(self.model, mode, self.device, self.denoising_steps, autocast)
        self.gpu_preprocess = self.device.startswith("cuda") if gpu_pre is None else bool(gpu_pre)
        self._card.update(self.fast.startup, gpu_preprocess=self.gpu_preprocess)
        if sizes:
            t0 = time.perf_counter()
            report = warm_up(self, [int(b) for b in sizes])
            self._card["startup"] = report
            log.info(
                "policy warm-up (fast_path=%s) took %.1f s: %s",
                self.fast.mode,
                time.perf_counter() - t0,
                report,
            )

    def _hook_backbone(self) -> None:
        """Time the backbone inside model.get_action with forward hooks (the head is the rest)."""
        torch = self._torch
        cuda = self.device.startswith("cuda")
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        state: dict[str, float] = {}

        def pre(_m, _args):
            if cuda and torch.cuda.is_current_stream_capturing():
                return  # a CUDA-graph capture (fast path): no sync allowed, replays have no hooks
            sync()
            state["t0"] = time.perf_counter()

        def post(_m, _args, _out):
            if cuda and torch.cuda.is_current_stream_capturing():
                return
            sync()
            self._bb_ms = (time.perf_counter() - state["t0"]) * 1e3

        self.model.backbone.register_forward_pre_hook(pre)
        self.model.backbone.register_forward_hook(post)

    # -- inference ---------------------------------------------------------------------------
    def _predict(self, obs: Observation, options: dict | None) -> tuple[dict[str, np.ndarray], dict]:
        if self.n16 is not None:
            return predict_n16(self, obs, options)
        from gr00t_exp.data.transforms import pack_sample
        from gr00t_exp.serve.fast_path import eval_augment

        torch = self._torch
        lay = self.layout
        t0 = time.perf_counter()
        video = self._stage_video(obs)
        # GPU preprocessing: raw frames + centre-crop parameters, resized on the device below.
        augment = (
            eval_augment(self.video_transform, obs.batch_size, *video.shape[-3:-1])
            if self.gpu_preprocess
            else None
        )
        video = video if augment else self.video_transform.batch(video)
        states = self.normalizer.normalize_state({s.name: obs.state[s.key] for s in lay.state})
        samples = [
            pack_sample(
                video[i],
                {k: v[i] for k, v in states.items()},
                None,
                obs.language[i],
                lay.prefixed_keys("state"),
                lay.prefixed_keys("action"),
                self.embodiment_tag,
                lay.max_state_dim,
                lay.max_action_dim,
            )
            for i in range(obs.batch_size)
        ]
        for s, a in zip(samples, augment or [], strict=False):
            s["augment"] = a
        # The fast path moves the batch to the device (a graph copies it straight into its input
        # buffers) and crops / resizes / normalises raw frames there.
        batch = self.collate(samples)
        t_host = time.perf_counter()
        init_noise = None
        seed = (options or {}).get("seed")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"options.seed must be an integer, got {seed!r}")
            cfg = self.model.action_head.config
            gen = torch.Generator().manual_seed(seed)
            init_noise = torch.randn(obs.batch_size, cfg.action_horizon, cfg.action_dim, generator=gen)
            init_noise = init_noise.to(self.device, self.model.action_head.dtype)
        sync = torch.cuda.synchronize if self.device.startswith("cuda") else (lambda: None)
        sync()
        t1 = time.perf_counter()
        pred = self.fast(batch, init_noise)
        sync()
        t2 = time.perf_counter()
        a = pred.float().cpu().numpy()[..., : self.action_width]
        raw = self.normalizer.unnormalize_action(a)
        actions = {s.key: np.asarray(raw[s.name], dtype=np.float32) for s in lay.action}
        for k, sk in self.spec.relative_actions.items():
            actions[k] = actions[k] + obs.state[sk][:, -1:, :]  # last observed state frame
        t3 = time.perf_counter()
        model_ms = (t2 - t1) * 1e3
        timing = {
            "preprocess": (t1 - t0) * 1e3,
            # host: stacking, normalisation, packing, tokens; device: what is queued before the
            # model runs (the noise upload; the batch's upload and image crop / resize / normalisation
            # count as model time, in the graph or in the plain path's first step)
            "preprocess_host": (t_host - t0) * 1e3,
            "preprocess_device": (t1 - t_host) * 1e3,
            "model": model_ms,
            "postprocess": (t3 - t2) * 1e3,
        }
        if self.fast.graphed is None:  # a graph replay runs no hooks: no backbone / head split
            bb = min(self._bb_ms, model_ms)
            timing.update(backbone=bb, action_head=model_ms - bb)
        return actions, timing

    def _stage_video(self, obs: Observation) -> np.ndarray:
        """(B, T, V, H, W, 3) uint8: time-major then view, as the training samples. With GPU
        preprocessing it is written into a pinned buffer kept per shape, so the upload is one
        asynchronous copy (the previous call's copy has finished: `_predict` synchronises)."""
        views = [obs.video[k] for k in self.video_keys]
        if not (self.gpu_preprocess and self.device.startswith("cuda")):
            return np.stack(views, axis=2)
        b, t, h, w, c = views[0].shape
        shape = (b, t, len(views), h, w, c)
        buf = self._staging.pop(shape, None)
        if buf is None:
            buf = self._torch.empty(shape, dtype=self._torch.uint8).pin_memory()
            if len(self._staging) >= 8:  # a few batch sizes / image sizes at most
                self._staging.pop(next(iter(self._staging)))
        self._staging[shape] = buf  # most recent last
        out = buf.numpy()
        np.stack(views, axis=2, out=out)
        return out

    def model_card(self) -> dict[str, Any]:
        return {**super().model_card(), **self._card}
