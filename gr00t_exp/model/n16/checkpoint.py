"""Checkpoint I/O in the GR00T N1.6 hub layout (nvidia/GR00T-N1.6-3B).

    <dir>/config.json            GR00T config, model_type Gr00tN1d6, only non-default fields
    <dir>/eagle_config.json      backbone sizes (optional: the shipped 3B sizes otherwise)
    <dir>/model.safetensors      or model-0000x-of-0000y.safetensors + model.safetensors.index.json
    <dir>/processor_config.json  {"processor_class": "Gr00tN1d6Processor", "processor_kwargs": {...}}
    <dir>/statistics.json        {tag: {state, action, relative_action: {key: stats}}}
    <dir>/embodiment_id.json     {tag: projector index}

Loading builds the model with its parameters on the meta device, checks every tensor name and
shape against the safetensors headers (N1.5's strict check), then loads shard by shard into the
requested dtype (None = as stored: the released layout is bf16 backbone with fp32 top LLM layers
and an fp32 action head, see `released_dtypes`). `lm_head.weight` is optional in the files and
ignored: the model ties it to `embed_tokens` (GR00T never computes logits). The processor files
are read into `model.metadata` and written back by `save_pretrained`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from gr00t_exp.model.checkpoint import (
    CONFIG_NAME,
    EAGLE_CONFIG_NAME,
    CheckpointError,
    _shards,
    _unwrap,
    dtype_name,
    file_shapes,
    hub_state_dict,
    params_on_meta,
    parse_dtype,
    resolve_checkpoint_dir,
    weight_files,
    write_hub_layout,
)
from gr00t_exp.model.n16.config import MODEL_TYPE, Gr00tN16Config, load_preset
from gr00t_exp.model.n16.model import Gr00tN16

LM_HEAD_KEY = "backbone.model.language_model.lm_head.weight"
PROCESSOR_CONFIG_NAME = "processor_config.json"
STATISTICS_NAME = "statistics.json"
EMBODIMENT_ID_NAME = "embodiment_id.json"
PROCESSOR_FILES = (PROCESSOR_CONFIG_NAME, STATISTICS_NAME, EMBODIMENT_ID_NAME)
DEFAULT_MAX_SHARD_BYTES = 5 * 1024**3


def read_config(ckpt_dir: Path, **runtime: Any) -> tuple[Gr00tN16Config, str]:
    """(config, where the backbone sizes came from)."""
    cfg_path = ckpt_dir / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(f"{ckpt_dir}: no {CONFIG_NAME}; not a GR00T checkpoint directory")
    config = json.loads(cfg_path.read_text())
    eagle_path = ckpt_dir / EAGLE_CONFIG_NAME
    if eagle_path.is_file():
        eagle, source = json.loads(eagle_path.read_text()), str(eagle_path)
    else:
        eagle, source = (
            load_preset("gr00t_n16_3b")[1],
            "the N1.6-3B defaults (no eagle_config.json beside config.json)",
        )
    try:
        cfg = Gr00tN16Config.from_hub_dicts(config, eagle, **runtime)
    except ValueError as e:
        raise CheckpointError(f"{cfg_path}: {e} (backbone sizes from {source})") from e
    return cfg, source


def build_empty(cfg: Gr00tN16Config) -> Gr00tN16:
    with params_on_meta():
        return Gr00tN16(cfg)


def model_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Checkpoint tensor names and shapes of `model` (the tied lm_head excluded)."""
    return {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items() if k != LM_HEAD_KEY}


def check_keys_and_shapes(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], where: str, sizes_from: str
) -> None:
    """Strict name + shape match (lm_head optional); one error listing every problem."""
    found = {k: v for k, v in found.items() if k != LM_HEAD_KEY}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        (k, expected[k], found[k]) for k in sorted(set(expected) & set(found)) if expected[k] != found[k]
    ]
    if not (missing or unexpected or wrong):
        return
    lines = [f"{where} does not match the GR00T N1.6 architecture (sizes from {sizes_from}):"]
    for k, exp, got in wrong[:20]:
        lines.append(f"  shape mismatch: {k}: checkpoint {list(got)}, model expects {list(exp)}")
    if missing:
        lines.append(f"  {len(missing)} tensors missing from the checkpoint, e.g. {', '.join(missing[:5])}")
    if unexpected:
        lines.append(
            f"  {len(unexpected)} unexpected tensors in the checkpoint, e.g. {', '.join(unexpected[:5])}"
        )
    if any(k.startswith("backbone.eagle_model.") for k in unexpected):
        lines.append(
            "  The tensors are N1.5's (backbone.eagle_model.*): load it as GR00T N1.5 (model=gr00t_n15)."
        )
    lines.append(
        "  Fix: put the matching eagle_config.json beside config.json, or correct config.json "
        "(select_layer, max_state_dim, max_action_dim, diffusion_model_cfg, state_dropout_prob) to what "
        "the weights were trained with."
    )
    raise CheckpointError("\n".join(lines))


def read_processor_files(ckpt_dir: Path, required: bool = True) -> dict[str, Any]:
    """The three processor files as {file name: parsed JSON}; missing ones raise when `required`."""
    out: dict[str, Any] = {}
    for name in PROCESSOR_FILES:
        p = ckpt_dir / name
        if p.is_file():
            out[name] = json.loads(p.read_text())
        elif required:
            raise CheckpointError(
                f"{ckpt_dir}: no {name}. A GR00T N1.6 checkpoint carries processor_config.json, "
                "statistics.json and embodiment_id.json beside config.json (the normalisation statistics "
                "and the tag -> projector table); copy them from the checkpoint the weights came from, or "
                "pass require_processor_files=False to load the weights alone"
            )
    return out


def released_dtypes(model: Gr00tN16) -> Gr00tN16:
    """Cast in place to the released storage layout (manifest_full.json): backbone bfloat16 except
    the top `tune_top_llm_layers` kept LLM layers (float32, trainable), action head float32."""
    cfg = model.config
    model.backbone.to(torch.bfloat16)
    layers = model.backbone.model.language_model.model.layers
    for layer in layers[len(layers) - cfg.tune_top_llm_layers :]:
        layer.to(torch.float32)
    model.action_head.to(torch.float32)
    return model


def load_pretrained(
    path_or_repo: str | Path,
    *,
    dtype: str | torch.dtype | None = torch.float32,
    device: str | torch.device | None = None,
    revision: str | None = None,
    zero_padded_rows: bool = True,
    attn_implementation: str = "sdpa",
    action_horizon: int | None = None,
    num_inference_timesteps: int | None = None,
    require_processor_files: bool = True,
) -> Gr00tN16:
    """Load a GR00T N1.6 checkpoint (local hub-layout directory or hub repo id).

    :param dtype: weights dtype; None = as stored (bf16 backbone / fp32 head as released).
    :param require_processor_files: processor_config.json / statistics.json / embodiment_id.json
        must be present (they are what serving and fine-tuning normalise with).
    """
    ckpt = resolve_checkpoint_dir(path_or_repo, revision)
    cfg, sizes_from = read_config(
        ckpt, zero_padded_rows=zero_padded_rows, attn_implementation=attn_implementation
    )
    if action_horizon is not None:
        cfg.set_action_chunk(action_horizon=action_horizon)
    if num_inference_timesteps is not None:
        cfg.num_inference_timesteps = int(num_inference_timesteps)
    metadata = read_processor_files(ckpt, required=require_processor_files)
    files = weight_files(ckpt)
    model = build_empty(cfg)
    check_keys_and_shapes(model_shapes(model), file_shapes(files), str(ckpt), sizes_from)

    target = parse_dtype(dtype)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    load_device = "cpu" if dev.type == "meta" else str(dev)
    for f in sorted(set(files.values())):
        part = {k: v for k, v in load_file(str(f), device=load_device).items() if k != LM_HEAD_KEY}
        if target is not None:
            part = {k: v.to(target) if v.is_floating_point() else v for k, v in part.items()}
        model.load_state_dict(part, strict=False, assign=True)
        del part
    model.tie_weights()
    left = [k for k, v in model.state_dict(keep_vars=True).items() if v.device.type == "meta"]
    if left:
        raise CheckpointError(f"{ckpt}: tensors not loaded: {left[:5]}")
    model.backbone.model.vision_model.vision_model.head.requires_grad_(False)
    model.to(dev)
    model.metadata = metadata or None
    model.eval()
    return model


def save_pretrained(
    model: nn.Module,
    out_dir: str | Path,
    metadata: dict | None = None,
    *,
    dtype: str | torch.dtype | None = None,
    max_shard_size: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write `model` in the N1.6 hub layout, atomically (temporary directory renamed into place).

    :param metadata: {file name: content} of the processor files; default the loaded ones.
    :param dtype: storage dtype (None = as held, e.g. the released mixed layout).
    """
    base = _unwrap(model)
    if not isinstance(base, Gr00tN16):
        raise TypeError(
            f"n16.save_pretrained expects a Gr00tN16 (optionally peft/compile-wrapped), got {type(base)}"
        )
    cfg: Gr00tN16Config = base.config
    tensors = {k: v for k, v in hub_state_dict(model).items() if k != LM_HEAD_KEY}
    check_keys_and_shapes(
        model_shapes(build_empty(cfg)),
        {k: tuple(v.shape) for k, v in tensors.items()},
        "the model being saved",
        "its own config",
    )
    target = parse_dtype(dtype)
    store_dtype = target or base.backbone.model.language_model.model.embed_tokens.weight.dtype
    shards = _shards(list(tensors), tensors, max_shard_size)
    metadata = metadata if metadata is not None else base.metadata
    unknown = sorted(set(metadata or {}) - set(PROCESSOR_FILES))
    if unknown:
        raise ValueError(
            f"save_pretrained metadata: unknown files {unknown}; expected keys among {PROCESSOR_FILES}"
        )

    texts = {
        CONFIG_NAME: json.dumps(cfg.to_hub_dict(dtype_name(store_dtype)), indent=2) + "\n",
        EAGLE_CONFIG_NAME: json.dumps(cfg.eagle_dict(), indent=2) + "\n",
    }
    for name, content in (metadata or {}).items():
        texts[name] = json.dumps(content, indent=1) + "\n"
    return write_hub_layout(out_dir, tensors, shards, target, texts)


def is_n16_checkpoint(ckpt_dir: Path) -> bool:
    """Whether `ckpt_dir/config.json` declares model_type Gr00tN1d6."""
    p = Path(ckpt_dir) / CONFIG_NAME
    if not p.is_file():
        return False
    try:
        return json.loads(p.read_text()).get("model_type") == MODEL_TYPE
    except (json.JSONDecodeError, AttributeError):
        return False
