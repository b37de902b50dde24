"""What Gr00tPolicy reads from a hub-layout checkpoint besides the weights.

- `experiment_cfg/metadata.json` (upstream layout, docs/upstream.md): per embodiment tag,
  the normalisation statistics and the modality layout (video resolution [W, H], state/action
  shapes, absolute flags);
- the embodiment config the model was trained with (`<tag>.gr00t_exp.config.embodiment`, written
  by this project's export; absent in upstream checkpoints);
- a normalisation hash and a checkpoint id for the handshake's model card.

A GR00T N1.6 checkpoint without metadata.json (an upstream fine-tune) is described by its
processor files instead (`n16_entry`); it then needs the serving embodiment config.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gr00t_exp.data.modality import Modality, parse_modality
from gr00t_exp.embodiment import bare

METADATA_FILE = "experiment_cfg/metadata.json"
# A GR00T N1.6 checkpoint's own description of its inputs (when it has no metadata.json).
N16_PROCESSOR_CONFIG = "processor_config.json"
N16_STATISTICS = "statistics.json"
# Embodiment fields that change what the model sees or emits: serving must match training.
COMPARED_FIELDS = (
    "embodiment_tag",
    "video_keys",
    "state_keys",
    "action_keys",
    "language_key",
    "observation_indices",
    "action_indices",
    "state_normalization",
    "action_normalization",
    "state_target_rotations",
    "action_target_rotations",
    "video",
    "max_state_dim",
    "max_action_dim",
)


class CheckpointMismatchError(ValueError):
    """The serving configuration does not match the checkpoint."""


def read_metadata(ckpt_dir: Path, embodiment_tag: str | None) -> tuple[str, dict]:
    """(tag, entry) of metadata.json; with no tag given the file must hold exactly one."""
    path = ckpt_dir / METADATA_FILE
    if not path.is_file() and (ckpt_dir / N16_PROCESSOR_CONFIG).is_file():
        return n16_entry(ckpt_dir, embodiment_tag)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a servable checkpoint is an export in the hub layout with "
            "experiment_cfg/metadata.json (mode=train exports one under <run>/export/last)"
        )
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    tags = sorted(k for k, v in meta.items() if isinstance(v, dict))
    if embodiment_tag is None:
        if len(tags) != 1:
            raise ValueError(
                f"{path} has embodiment tags {tags}: choose one with deploy.policy.embodiment_tag"
            )
        embodiment_tag = tags[0]
    if embodiment_tag not in meta:
        raise CheckpointMismatchError(
            f"{path} has no entry for embodiment tag {embodiment_tag!r} (has {tags}); set "
            "deploy.policy.embodiment_tag (or embodiment.embodiment_tag) to one of them"
        )
    entry = meta[embodiment_tag]
    for part in ("statistics", "modalities"):
        if not isinstance(entry.get(part), dict):
            raise ValueError(f"{path}: entry {embodiment_tag!r} lacks '{part}'")
    return embodiment_tag, entry


def n16_entry(ckpt_dir: Path, embodiment_tag: str | None) -> tuple[str, dict]:
    """(tag, a metadata.json-like entry) of a GR00T N1.6 checkpoint that has only its processor
    files (an upstream fine-tune): keys from processor_config.json's modality config, widths from
    statistics.json; no video resolution (any frame size is letterboxed by the N1.6 processor)."""
    proc_path, stats_path = ckpt_dir / N16_PROCESSOR_CONFIG, ckpt_dir / N16_STATISTICS
    try:
        proc = json.loads(proc_path.read_text())
        stats = json.loads(stats_path.read_text())
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{e.filename}: missing; a GR00T N1.6 checkpoint carries processor_config.json and statistics.json"
        ) from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{ckpt_dir}: a processor file is not valid JSON: {e}") from None
    configs = proc.get("processor_kwargs", proc).get("modality_configs", {})
    tags = sorted(configs)
    if embodiment_tag is None:
        if len(tags) != 1:
            raise ValueError(
                f"{proc_path} has embodiment tags {tags}: choose one with deploy.policy.embodiment_tag"
            )
        embodiment_tag = tags[0]
    if embodiment_tag not in configs or embodiment_tag not in stats:
        raise CheckpointMismatchError(
            f"{proc_path} / statistics.json have no entry for embodiment tag {embodiment_tag!r} (have "
            f"{tags}); set deploy.policy.embodiment_tag (or embodiment.embodiment_tag) to one of them"
        )
    mods, st = configs[embodiment_tag], stats[embodiment_tag]
    modalities: dict[str, dict] = {"video": {k: {} for k in mods["video"]["modality_keys"]}}
    for group in ("state", "action"):
        modalities[group] = {
            k: {"shape": [len(st[group][k]["min"])], "absolute": True, "continuous": True}
            for k in mods[group]["modality_keys"]
        }
    return embodiment_tag, {"statistics": st, "modalities": modalities, "embodiment_tag": embodiment_tag}


def _plain(x: Any) -> Any:
    if isinstance(x, DictConfig) or OmegaConf.is_config(x):
        return OmegaConf.to_container(x, resolve=True)
    if hasattr(x, "__dataclass_fields__"):
        return OmegaConf.to_container(OmegaConf.structured(x), resolve=True)
    return x


def _norm(field: str, value: Any) -> Any:
    value = _plain(value)
    if field in ("video_keys", "state_keys", "action_keys"):
        return [str(v) for v in value or []]
    if isinstance(value, dict):
        return {str(k): value[k] for k in sorted(value)}
    return value


def compare_embodiments(trained: Any, serving: Any) -> list[str]:
    """Human-readable differences 'field: checkpoint X, serving config Y' (empty when equal)."""
    trained, serving = _plain(trained), _plain(serving)
    diffs = []
    for f in COMPARED_FIELDS:
        if f not in trained:
            continue
        a, b = _norm(f, trained.get(f)), _norm(f, serving.get(f))
        if f == "video" and isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    diffs.append(
                        f"embodiment.video.{k}: checkpoint {a.get(k)!r}, serving config {b.get(k)!r}"
                    )
            continue
        if a != b:
            diffs.append(f"embodiment.{f}: checkpoint {a!r}, serving config {b!r}")
    return diffs


def check_against_modalities(embodiment: Any, entry: dict, source: str) -> list[str]:
    """Keys of the serving embodiment (an EmbodimentConfig) that metadata.json does not describe."""
    mods = entry["modalities"]
    out = []
    for group in ("video", "state", "action"):
        have = mods.get(group, {})
        for key in getattr(embodiment, f"{group}_keys", None) or []:
            if bare(key, group) not in have:
                out.append(f"{group} key '{key}' is not in {source} modalities.{group} (has {sorted(have)})")
    return out


def modality_from_metadata(entry: dict, source: str) -> Modality:
    """The checkpoint's own description of its keys (metadata.json `modalities`) as a Modality,
    so an EmbodimentLayout can be built over it: each state/action key becomes its own column
    `<group>.<key>` of its recorded width (the dataset's columns are not part of a checkpoint)."""
    mods = entry["modalities"]
    layout: dict[str, dict] = {"state": {}, "action": {}}
    for group in ("state", "action"):
        for key, m in (mods.get(group) or {}).items():
            layout[group][key] = {
                "start": 0,
                "end": int(m["shape"][0]),
                "original_key": f"{group}.{key}",
                "absolute": bool(m.get("absolute", True)),
                "rotation_type": m.get("rotation_type"),
                "dtype": "float32" if m.get("continuous", True) else "int64",
            }
    return parse_modality(layout, source)


def video_sizes_from_metadata(entry: dict) -> dict[str, tuple[int, int]]:
    """View -> (height, width) from metadata.json (which stores resolution as [W, H])."""
    out = {}
    for key, m in (entry["modalities"].get("video") or {}).items():
        res = m.get("resolution")
        if res:
            out[key] = (int(res[1]), int(res[0]))
    return out


def canonical_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def checkpoint_id(ckpt_dir: Path) -> str:
    """sha256 over config.json, metadata.json and each safetensors file's name, size, header
    (tensor names, dtypes, shapes, offsets) and first/last MiB of data: identifies the export
    without reading gigabytes."""
    h = hashlib.sha256()
    for rel in ("config.json", METADATA_FILE):
        p = ckpt_dir / rel
        if p.is_file():
            h.update(rel.encode() + b"\0" + p.read_bytes())
    for p in sorted(ckpt_dir.glob("*.safetensors")):
        h.update(p.name.encode() + b"\0" + str(p.stat().st_size).encode())
        with open(p, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            h.update(f.read(min(n, 100 << 20)))
            f.seek(8 + n)
            h.update(f.read(1 << 20))
            size = p.stat().st_size
            f.seek(max(8 + n, size - (1 << 20)))
            h.update(f.read(1 << 20))
    return h.hexdigest()[:16]
