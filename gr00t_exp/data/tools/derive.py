"""Embodiment configs from datasets: `derive_embodiment(meta)` and `mode=derive_embodiment`.

The derived YAML is a starting point: every modality key is fed to the model with min_max
normalisation (binary for non-float keys), every camera is a model input, and the dataset's layout is
copied into `modality`. Trim unused keys (e.g. constant leg joints: see mode=validate) by hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gr00t_exp.data.config import EmbodimentConfig
from gr00t_exp.data.meta import DatasetMeta
from gr00t_exp.embodiment import prefixed

_LANG_PREFERENCE = (
    "human.action.task_description",
    "human.task_description",
    "language.language_instruction",
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "my_robot"


def derive_embodiment(meta: DatasetMeta, name: str | None = None) -> dict[str, Any]:
    """A dict matching EmbodimentConfig for the dataset's modality."""
    mod = meta.modality
    langs = list(mod.annotation)
    lang = next(
        (k for k in _LANG_PREFERENCE if k in mod.annotation), langs[0] if langs else "human.task_description"
    )

    def norm(group: str) -> dict[str, str]:
        return {
            prefixed(group, k): ("min_max" if s.is_continuous else "binary")
            for k, s in getattr(mod, group).items()
        }

    def rotations(group: str) -> dict[str, str]:
        return {prefixed(group, k): "rotation_6d" for k, s in getattr(mod, group).items() if s.rotation_type}

    action_dims = sum(s.width for s in mod.action.values())
    state_dims = sum(s.width for s in mod.state.values())
    cfg = {
        "name": name or _slug(str(meta.info.get("robot_type") or meta.root.name)),
        "embodiment_tag": "new_embodiment",
        "video_keys": mod.prefixed_keys("video"),
        "extra_video_keys": [],
        "state_keys": mod.prefixed_keys("state"),
        "action_keys": mod.prefixed_keys("action"),
        "language_key": prefixed("annotation", lang),
        "observation_indices": [0],
        "action_indices": list(range(16)),
        "state_normalization": norm("state"),
        "action_normalization": norm("action"),
        "state_target_rotations": rotations("state"),
        "action_target_rotations": rotations("action"),
        "max_state_dim": max(64, state_dims),
        "max_action_dim": max(32, action_dims),
        "modality": mod.to_json_dict(),
    }
    # The schema must accept it (unknown keys / wrong types would fail here, not at training time).
    OmegaConf.merge(OmegaConf.structured(EmbodimentConfig), cfg)
    return cfg


def to_yaml(cfg: dict[str, Any], meta: DatasetMeta) -> str:
    header = [
        f"# Derived from {meta.root} by `python run.py mode=derive_embodiment`.",
        "# A starting point: remove keys the model should not see (constant joints, unused cameras),",
        "# move cameras to extra_video_keys, choose normalisations. See conf/embodiment/new_embodiment.yaml.",
    ]
    if cfg["max_action_dim"] > 32:
        header.append(
            f"# NOTE: {cfg['max_action_dim']} action dims > 32: the pretrained action head is rebuilt (or drop keys)."
        )
    return "\n".join(header) + "\n" + OmegaConf.to_yaml(OmegaConf.create(cfg))


def run(cfg) -> int:
    """mode=derive_embodiment: write <name>.yaml to tools.output (a file or dir) or the run dir."""
    from gr00t_exp.data.errors import DatasetError
    from gr00t_exp.data.meta import load_meta
    from gr00t_exp.data.tools.common import tool_dataset_path, tool_output_dir

    try:
        meta = load_meta(tool_dataset_path(cfg))
    except (DatasetError, ValueError) as e:
        print(f"error: {e}")
        return 1
    derived = derive_embodiment(meta)
    out = cfg.tools.get("output")
    if out:
        dest = Path(str(out))
        if dest.suffix not in (".yaml", ".yml"):
            dest = dest / f"{derived['name']}.yaml"
    else:
        dest = tool_output_dir(cfg) / f"{derived['name']}.yaml"
    if dest.exists():
        print(f"error: {dest} exists; choose another tools.output (existing configs are never overwritten)")
        return 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(to_yaml(derived, meta))
    print(f"wrote {dest} (modality from {meta.modality_source}); use it with embodiment={derived['name']}")
    return 0
