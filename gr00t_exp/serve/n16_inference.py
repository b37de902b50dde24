"""GR00T N1.6 inference for Gr00tPolicy: observation -> model batch -> absolute actions.

Everything comes from the checkpoint's processor files, as N1.6's own policy does: the modality
config and statistics of the served embodiment (processor_config.json, statistics.json), its
projector index (embodiment_id.json). Per request each sample goes through `Gr00tN16Processor`
(the one training used: letterbox/crop/resize, chat tokens, sin/cos and normalised state) and the
model's output through its `decode_action` (un-normalise, RELATIVE groups made absolute with the
sample's last observed state). torch is imported by the caller.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gr00t_exp.embodiment import EmbodimentLayout
from gr00t_exp.model.batch import to_device
from gr00t_exp.serve.checkpoint_meta import CheckpointMismatchError
from gr00t_exp.serve.observation import Observation


class N16Inference:
    """The processor side of one N1.6 checkpoint for the embodiment `tag` laid out as `layout`."""

    def __init__(self, checkpoint: Path, tag: str, layout: EmbodimentLayout) -> None:
        from gr00t_exp.model.n16.processor import Gr00tN16Processor

        self.processor = Gr00tN16Processor.from_pretrained(checkpoint)
        self.tag = tag
        self.layout = layout
        mods = self.processor.modality_configs.get(tag)
        source = f"{checkpoint}/processor_config.json"
        if mods is None:
            raise CheckpointMismatchError(
                f"{source} has no modality config for embodiment {tag!r} (has "
                f"{sorted(self.processor.modality_configs)}); set deploy.policy.embodiment_tag to one of them"
            )
        for group in ("video", "state", "action"):
            have, want = list(mods[group]["modality_keys"]), layout.keys(group)
            if have != want:
                raise CheckpointMismatchError(
                    f"{source}: {tag}.{group} keys are {have} but the checkpoint's embodiment lists {want}; "
                    "the processor files and experiment_cfg/metadata.json must come from the same export"
                )
        self.statistics = self.processor.state_action.statistics[tag]
        specs = self.processor.state_action.modalities[tag]["action"]
        acts = specs.action_configs or []
        # RELATIVE groups (reported to clients as such): action key -> the state key it is taken against.
        self.relative_actions = {
            key: (a.state_key or key)
            for key, a in zip(specs.modality_keys, acts, strict=False)
            if self.processor.state_action.use_relative_action and a.rep.upper() == "RELATIVE"
        }

    def batch(self, obs: Observation) -> dict[str, Any]:
        """The model batch of a validated observation (one processed sample per batch row)."""
        samples = [
            self.processor.sample(
                self.tag,
                {k: obs.video[k][i] for k in self.layout.keys("video")},
                obs.language[i],
                {k: obs.state[k][i] for k in self.layout.keys("state")},
            )
            for i in range(obs.batch_size)
        ]
        return self.processor.collate(samples)

    def decode(self, action_pred: np.ndarray, obs: Observation) -> dict[str, np.ndarray]:
        """(B, H, A) model output -> {action key: float32 (B, steps, D)} in robot units."""
        rows = [
            self.processor.decode_action(
                self.tag, action_pred[i], {k: obs.state[k][i] for k in self.layout.keys("state")}
            )
            for i in range(obs.batch_size)
        ]
        return {k: np.stack([r[k] for r in rows]).astype(np.float32) for k in self.layout.keys("action")}


def predict_n16(policy: Any, obs: Observation, options: dict | None) -> tuple[dict[str, np.ndarray], dict]:
    """Gr00tPolicy._predict for an N1.6 checkpoint: (actions {key: (B, steps, D)}, timing ms)."""
    import torch

    n16: N16Inference = policy.n16
    t0 = time.perf_counter()
    batch = to_device(n16.batch(obs), policy.device)
    init_noise = None
    seed = (options or {}).get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"options.seed must be an integer, got {seed!r}")
        cfg = policy.model.config
        gen = torch.Generator().manual_seed(seed)
        init_noise = torch.randn(obs.batch_size, cfg.action_horizon, cfg.max_action_dim, generator=gen)
        init_noise = init_noise.to(policy.device, policy.model.dtype)
    sync = torch.cuda.synchronize if policy.device.startswith("cuda") else (lambda: None)
    sync()
    t1 = time.perf_counter()
    pred = policy.fast(batch, init_noise)
    sync()
    t2 = time.perf_counter()
    actions = n16.decode(pred.float().cpu().numpy(), obs)
    t3 = time.perf_counter()
    model_ms = (t2 - t1) * 1e3
    timing = {"preprocess": (t1 - t0) * 1e3, "model": model_ms, "postprocess": (t3 - t2) * 1e3}
    if policy.fast.graphed is None:  # a graph replay runs no hooks: no backbone / head split
        bb = min(policy._bb_ms, model_ms)
        timing.update(backbone=bb, action_head=model_ms - bb)
    return actions, timing
