"""The GR00T N1.6 processor files of a fine-tuning run, built from the dataset and the model.

A fine-tuned N1.6 checkpoint carries (refdata gr00t_n16/README.md, the reference loader reads them):

- processor_config.json  {"processor_class": "Gr00tN1d6Processor", "processor_kwargs": {...,
  "modality_configs": {tag: {video, state, action, language}}}};
- statistics.json        {tag: {"state": {key: stats}, "action": {key: stats},
  "relative_action": {key: per-step stats}}};
- embodiment_id.json     {tag: projector index}.

The run's embodiment becomes one modality config: state keys whose normalisation is `sin_cos` are
sin/cos encoded, `mean_std` keys are mean/std normalised, the others min/max; action keys listed in
`embodiment.relative_action_keys` are RELATIVE (taken against the last observed state), the others
ABSOLUTE. The base model's own entries (the other embodiments it was trained on) are kept, so the
export still serves them. Padding sizes come from the model's config, so batches fit the model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from gr00t_exp.data.transforms.normalize import key_stats
from gr00t_exp.embodiment import EmbodimentLayout, prefixed
from gr00t_exp.embodiment.ids import projector_table

PROCESSOR_CONFIG_NAME = "processor_config.json"
STATISTICS_NAME = "statistics.json"
EMBODIMENT_ID_NAME = "embodiment_id.json"
PROCESSOR_CLASS = "Gr00tN1d6Processor"
FAMILY = "gr00t_n16"

# processor_kwargs of the released N1.6 checkpoints (refdata gr00t_n16/processor_config.json),
# less the sizes, which follow the model being trained.
DEFAULT_KWARGS: dict[str, Any] = {
    "use_percentiles": False,
    "clip_outliers": True,
    "image_crop_size": None,
    "image_target_size": None,
    "shortest_image_edge": 256,
    "crop_fraction": 0.95,
    "random_rotation_angle": None,
    "color_jitter_params": None,
    "formalize_language": True,
    "model_name": "nvidia/Eagle-Block2A-2B-v2",
    "model_type": "eagle",
    "apply_sincos_state_encoding": True,
    "use_albumentations": True,
    "use_relative_action": True,
}


def relative_keys(embodiment: Any) -> list[str]:
    """`embodiment.relative_action_keys` as bare keys (`action.left_arm` and `left_arm` both accepted)."""
    keys = list(getattr(embodiment, "relative_action_keys", None) or [])
    return [str(k).removeprefix("action.") for k in keys]


def modality_config(layout: EmbodimentLayout, relative: Sequence[str]) -> dict[str, Any]:
    """One embodiment's entry of processor_config.json's modality_configs."""
    state_keys = layout.keys("state")
    action_keys = layout.keys("action")
    by_norm = {g: {s.key: s.normalization for s in layout.specs(g)} for g in ("state", "action")}
    return {
        "video": {"delta_indices": list(layout.observation_indices), "modality_keys": layout.keys("video")},
        "state": {
            "delta_indices": list(layout.observation_indices),
            "modality_keys": state_keys,
            "sin_cos_embedding_keys": [k for k in state_keys if by_norm["state"][k] == "sin_cos"],
            "mean_std_embedding_keys": [k for k in state_keys if by_norm["state"][k] == "mean_std"],
        },
        "action": {
            "delta_indices": list(layout.action_indices),
            "modality_keys": action_keys,
            "mean_std_embedding_keys": [k for k in action_keys if by_norm["action"][k] == "mean_std"],
            "action_configs": [
                {
                    "rep": "RELATIVE" if k in relative else "ABSOLUTE",
                    "type": "NON_EEF",
                    "format": "DEFAULT",
                    "state_key": None,
                }
                for k in action_keys
            ],
        },
        "language": {"delta_indices": [0], "modality_keys": [prefixed("annotation", layout.language_key)]},
    }


def embodiment_statistics(
    layout: EmbodimentLayout, column_stats: Mapping, modality: Any, relative_stats: Mapping[str, Any]
) -> dict[str, Any]:
    """One embodiment's entry of statistics.json (per-key slices of the dataset's column stats)."""
    per_key = key_stats(column_stats, modality)
    out: dict[str, Any] = {"state": {}, "action": {}, "relative_action": dict(relative_stats)}
    for group in ("state", "action"):
        for spec in layout.specs(group):
            if spec.key not in per_key[group]:
                raise KeyError(
                    f"{spec.column}: the dataset statistics have no entry for {spec.name}; recompute them "
                    "(python run.py mode=stats data=...)"
                )
            out[group][spec.key] = {
                s: [float(v) for v in vals] for s, vals in per_key[group][spec.key].items()
            }
    return out


def processor_files(
    layout: EmbodimentLayout,
    column_stats: Mapping,
    modality: Any,
    relative_stats: Mapping[str, Any],
    relative: Sequence[str],
    model_config: Any,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """{file name: content} of the three processor files for `layout` on a model of `model_config`
    (a Gr00tN16Config); `base` = the base checkpoint's processor files (model.metadata), if any."""
    base = copy.deepcopy(dict(base or {}))
    tag = layout.embodiment_tag
    proc = base.get(PROCESSOR_CONFIG_NAME) or {"processor_class": PROCESSOR_CLASS}
    kwargs = {**DEFAULT_KWARGS, **proc.get("processor_kwargs", {})}
    kwargs["max_state_dim"] = int(model_config.max_state_dim)
    kwargs["max_action_dim"] = int(model_config.max_action_dim)
    kwargs["max_action_horizon"] = int(model_config.action_horizon)
    configs = dict(kwargs.get("modality_configs") or {})
    configs[tag] = modality_config(layout, relative)
    kwargs["modality_configs"] = configs
    proc = {
        **proc,
        "processor_class": proc.get("processor_class", PROCESSOR_CLASS),
        "processor_kwargs": kwargs,
    }
    stats = dict(base.get(STATISTICS_NAME) or {})
    stats[tag] = embodiment_statistics(layout, column_stats, modality, relative_stats)
    ids = dict(base.get(EMBODIMENT_ID_NAME) or projector_table(FAMILY))
    if tag not in ids:
        ids[tag] = int(projector_table(FAMILY).get(tag, projector_table(FAMILY)["new_embodiment"]))
    return {PROCESSOR_CONFIG_NAME: proc, STATISTICS_NAME: stats, EMBODIMENT_ID_NAME: ids}
