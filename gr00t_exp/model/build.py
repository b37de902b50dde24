"""`build_model(cfg.model)`: the model a run asks for (pretrained or randomly initialised).

Tuning flags, LoRA and the parameter summary are applied afterwards by gr00t_exp/model/tuning.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gr00t_exp.model.checkpoint import CONFIG_NAME, load_pretrained, parse_dtype, read_config
from gr00t_exp.model.config import Gr00tN15Config, ModelConfig, deep_merge
from gr00t_exp.model.gr00t_n15 import Gr00tN15


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    try:  # OmegaConf DictConfig
        from omegaconf import DictConfig, OmegaConf

        if isinstance(value, DictConfig):
            return OmegaConf.to_container(value, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    return json.loads(json.dumps(dict(value)))


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    return getattr(cfg, key, default) if not isinstance(cfg, dict) else cfg.get(key, default)


def architecture(cfg: ModelConfig) -> Gr00tN15Config:
    """The architecture of a random-init build: a local base model's config if readable, else the
    preset; then `arch` overrides and the action-chunk overrides."""
    runtime = {"zero_padded_rows": bool(_get(cfg, "zero_padded_rows", True))}
    runtime["attn_implementation"] = str(_get(cfg, "attn_implementation", "sdpa"))
    overrides = _as_dict(_get(cfg, "arch"))
    base = _get(cfg, "base_model_path")
    if base and (Path(str(base)).expanduser() / CONFIG_NAME).is_file():
        arch, _ = read_config(Path(str(base)).expanduser(), **runtime)
        if overrides:
            eagle_over = overrides.pop("eagle", None) or {}
            arch = Gr00tN15Config.from_hub_dicts(
                deep_merge(arch.to_hub_dict(), overrides), deep_merge(arch.eagle, eagle_over), **runtime
            )
    else:
        arch = Gr00tN15Config.from_preset(str(_get(cfg, "arch_preset", "gr00t_n15_3b")), overrides, **runtime)
    arch.set_action_chunk(_get(cfg, "action_horizon"), _get(cfg, "max_action_dim"))
    return arch


def is_n16(cfg: ModelConfig) -> bool:
    """N1.6 when the preset or name says so, or a readable local base model declares Gr00tN1d6."""
    from gr00t_exp.model.n16.checkpoint import is_n16_checkpoint

    base = _get(cfg, "base_model_path")
    if base and Path(str(base)).expanduser().is_dir():
        return is_n16_checkpoint(Path(str(base)).expanduser())
    return str(_get(cfg, "arch_preset", "")).startswith("gr00t_n16") or str(_get(cfg, "name", "")).startswith(
        "gr00t_n16"
    )


def n16_architecture(cfg: ModelConfig):
    """The N1.6 counterpart of `architecture` (local base model's config, else the preset)."""
    from gr00t_exp.model.n16.checkpoint import read_config as read_n16
    from gr00t_exp.model.n16.config import Gr00tN16Config

    runtime = {
        "zero_padded_rows": bool(_get(cfg, "zero_padded_rows", True)),
        "attn_implementation": str(_get(cfg, "attn_implementation", "sdpa")),
    }
    overrides = _as_dict(_get(cfg, "arch"))
    base = _get(cfg, "base_model_path")
    if base and (Path(str(base)).expanduser() / CONFIG_NAME).is_file():
        arch, _ = read_n16(Path(str(base)).expanduser(), **runtime)
        eagle_over = overrides.pop("eagle", None) or {}
        arch = Gr00tN16Config.from_hub_dicts(
            deep_merge(arch.to_hub_dict(), overrides), deep_merge(arch.eagle, eagle_over), **runtime
        )
    else:
        arch = Gr00tN16Config.from_preset(str(_get(cfg, "arch_preset", "gr00t_n16_3b")), overrides, **runtime)
    arch.set_action_chunk(_get(cfg, "action_horizon"), _get(cfg, "max_action_dim"))
    return arch


def build_model(cfg: ModelConfig, device: str | torch.device | None = None) -> Gr00tN15:
    """Random init (`random_init` or no `base_model_path`) or load `base_model_path`; GR00T N1.6
    (`Gr00tN16`) when `is_n16(cfg)`, else N1.5.

    :param device: where to build (random init directly on a GPU is much faster than on CPU).
    """
    dtype = parse_dtype(_get(cfg, "dtype", "float32")) or torch.float32
    steps = _get(cfg, "num_inference_timesteps")
    base = _get(cfg, "base_model_path")
    n16 = is_n16(cfg)
    if n16 and not (base and not _get(cfg, "random_init", False)):
        from gr00t_exp.model.n16.model import Gr00tN16

        arch16 = n16_architecture(cfg)
        if steps is not None:
            arch16.num_inference_timesteps = int(steps)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device or "cpu"):
                model16 = Gr00tN16(arch16)
        finally:
            torch.set_default_dtype(previous)
        if _get(cfg, "gradient_checkpointing", False):
            model16.set_gradient_checkpointing(True)
        return model16  # type: ignore[return-value]
    if base and not _get(cfg, "random_init", False):
        model = load_pretrained(
            str(base),
            dtype=dtype,
            device=device,
            revision=_get(cfg, "revision"),
            zero_padded_rows=bool(_get(cfg, "zero_padded_rows", True)),
            attn_implementation=str(_get(cfg, "attn_implementation", "sdpa")),
            action_horizon=_get(cfg, "action_horizon"),
            num_inference_timesteps=steps,
            family="gr00t_n16" if n16 else None,
        )
        if n16:
            if _get(cfg, "gradient_checkpointing", False):
                model.set_gradient_checkpointing(True)
            return model
        if _get(cfg, "max_action_dim") not in (None, model.config.action_head_cfg.action_dim):
            raise ValueError(
                f"model.max_action_dim={_get(cfg, 'max_action_dim')} differs from the checkpoint's "
                f"action_dim={model.config.action_head_cfg.action_dim}; the action encoder/decoder weights "
                "fix it (leave model.max_action_dim null)"
            )
    else:
        arch = architecture(cfg)
        if steps is not None:
            arch.action_head_cfg.num_inference_timesteps = int(steps)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device or "cpu"):
                model = Gr00tN15(arch)
        finally:
            torch.set_default_dtype(previous)
    if _get(cfg, "gradient_checkpointing", False):
        model.set_gradient_checkpointing(True)
    return model
