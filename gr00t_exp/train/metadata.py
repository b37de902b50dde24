"""Upstream's experiment_cfg/metadata.json content, built from a dataset's modality and statistics.

Layout (gr00t_reference.md §1.9): {tag: {"statistics": {"state": {key: stats}, "action": {...}},
"modalities": {"video": {key: {resolution [W, H], channels, fps}}, "state"/"action": {key:
{absolute, rotation_type, shape [D], continuous}}}, "embodiment_tag": tag}}. Per-key statistics are
the slices [start, end) of the column statistics in meta/stats.json.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from gr00t_exp.data.transforms.normalize import key_stats


def _short(key: str) -> str:
    return key.partition(".")[2]


def build_metadata(embodiment: DictConfig | Any, meta: Any, stats: dict[str, dict]) -> dict:
    tag = str(embodiment.embodiment_tag)
    mod = meta.modality
    statistics: dict[str, dict] = {"state": {}, "action": {}}
    modalities: dict[str, dict] = {"video": {}, "state": {}, "action": {}}
    per_key = key_stats(stats, mod)
    for group, keys in (("state", embodiment.state_keys), ("action", embodiment.action_keys)):
        for key in keys:
            short = _short(str(key))
            spec = getattr(mod, group)[short]
            if short not in per_key[group]:
                raise KeyError(f"meta/stats.json has no statistics for column {mod.column(group, short)!r}")
            statistics[group][short] = {
                s: [float(v) for v in vals] for s, vals in per_key[group][short].items()
            }
            modalities[group][short] = {
                "absolute": spec.absolute,
                "rotation_type": spec.rotation_type,
                "shape": [spec.width],
                "continuous": spec.is_continuous,
            }
    for key in embodiment.video_keys:
        short = _short(str(key))
        feat = meta.info.get("features", {}).get(mod.column("video", short), {})
        shape = list(feat.get("shape") or [0, 0, 3])
        names = list(feat.get("names") or [])
        h, w, c = (shape + [0, 0, 3])[:3] if names[:1] != ["channels"] else (shape[1], shape[2], shape[0])
        modalities["video"][short] = {
            "resolution": [int(w), int(h)],
            "channels": int(c),
            "fps": float(meta.fps),
        }
    return {tag: {"statistics": statistics, "modalities": modalities, "embodiment_tag": tag}}
