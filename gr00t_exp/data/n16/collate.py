"""Raw dataset samples -> a GR00T N1.6 batch, through the checkpoint's own `Gr00tN16Processor`.

The dataset returns raw samples (`Gr00tDataset(transform=False)` form: video uint8 (T, V, H, W, 3)
as decoded, `state.<key>` (T_obs, D) and `action.<key>` (T_act, D) in dataset units, language).
Everything N1.6-specific (relative actions against the last state, sin/cos, mean/std and min/max
groups, clipping, letterbox/crop/resize of the views, chat tokens, padding to the model's sizes)
is the processor's, so training sees exactly what serving will feed the model. `training=True`
(the training loader only) gives the views the processor's random crop / rotation / colour jitter,
one draw per sample from `generator` (default: torch's global RNG, seeded per DataLoader worker);
validation and evaluation collators stay deterministic. Runs in the DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from gr00t_exp.embodiment import EmbodimentLayout
from gr00t_exp.model.n16.processor import Gr00tN16Processor


class N16Collator:
    def __init__(
        self,
        processor: Gr00tN16Processor,
        layout: EmbodimentLayout,
        training: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.processor = processor
        self.training = training
        self.generator = generator
        self.layout = layout
        self.tag = layout.embodiment_tag
        self.views = layout.keys("video")

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not samples:
            raise ValueError("N16Collator: empty batch")
        lay = self.layout
        processed = []
        for s in samples:
            if "video" not in s or any(spec.name not in s for spec in lay.state):
                raise KeyError(
                    "N16Collator expects raw samples (video, state.<key>, action.<key>, language); got "
                    f"{sorted(s)}: build the dataset with transform=False"
                )
            video = s["video"]  # (T, V, H, W, 3)
            images = {v: video[:, j] for j, v in enumerate(self.views)}
            state = {spec.key: s[spec.name] for spec in lay.state}
            action = {spec.key: s[spec.name] for spec in lay.action} if lay.action[0].name in s else None
            processed.append(
                self.processor.sample(
                    self.tag,
                    images,
                    s["language"],
                    state,
                    action,
                    training=self.training,
                    generator=self.generator,
                )
            )
        return self.processor.collate(processed)
