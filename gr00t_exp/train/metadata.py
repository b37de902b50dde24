"""Upstream's experiment_cfg/metadata.json content, built from a dataset's modality and statistics.

Layout (docs/upstream.md "Checkpoint metadata"): {tag: {"statistics": {"state": {key: stats}, "action": {...}},
"modalities": {"video": {key: {resolution [W, H], channels, fps}}, "state"/"action": {key:
{absolute, rotation_type, shape [D], continuous}}}, "embodiment_tag": tag}}. Per-key statistics are
the slices [start, end) of the column statistics in meta/stats.json.
"""

from __future__ import annotations

from typing import Any

from gr00t_exp.data.transforms.normalize import key_stats
from gr00t_exp.embodiment import EmbodimentLayout


def build_metadata(embodiment: Any, meta: Any, stats: dict[str, dict]) -> dict:
    """embodiment: the run's embodiment config (or its EmbodimentLayout over `meta`)."""
    layout = (
        embodiment
        if isinstance(embodiment, EmbodimentLayout)
        else EmbodimentLayout.from_meta(embodiment, meta)
    )
    tag = layout.embodiment_tag
    statistics: dict[str, dict] = {"state": {}, "action": {}}
    modalities: dict[str, dict] = {"video": {}, "state": {}, "action": {}}
    per_key = key_stats(stats, meta.modality)
    for group in ("state", "action"):
        for spec in layout.specs(group):
            if spec.key not in per_key[group]:
                raise KeyError(f"meta/stats.json has no statistics for column {spec.column!r}")
            statistics[group][spec.key] = {
                s: [float(v) for v in vals] for s, vals in per_key[group][spec.key].items()
            }
            modalities[group][spec.key] = {
                "absolute": spec.absolute,
                "rotation_type": spec.rotation_type,
                "shape": [spec.require_width()],
                "continuous": spec.continuous,
            }
    for view in layout.video:
        h, w = view.size or (0, 0)
        modalities["video"][view.key] = {
            "resolution": [int(w), int(h)],
            "channels": int(view.channels or 3),
            "fps": float(meta.fps),
        }
    return {tag: {"statistics": statistics, "modalities": modalities, "embodiment_tag": tag}}
