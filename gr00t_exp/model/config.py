"""Configs of the model domain.

- `ModelConfig`: the Hydra `model` group (typed schema; every key a conf/model/*.yaml sets lives here).
- `Gr00tN15Config`: the architecture, i.e. the hub `config.json` of a GR00T N1.5 checkpoint
  (`backbone_cfg`, `action_head_cfg`) plus the Eagle sub-config (`eagle_config.json`: SigLIP vision
  and Qwen3 text sizes), and two runtime switches that are not stored in checkpoints.

This module imports no torch/transformers so the config schema stays cheap to import.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

ARCH_DIR = Path(__file__).resolve().parent / "assets" / "arch"
ARCH_PRESETS = ("gr00t_n15_3b", "gr00t_n15_tiny")


@dataclass
class LoraConfig:
    rank: int = 0  # 0 = off
    alpha: int = 16
    dropout: float = 0.1
    targets: list[str] = field(default_factory=lambda: ["action_head"])  # action_head | llm
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "to_q", "to_k", "to_v"]
    )


@dataclass
class ModelConfig:
    name: str = "gr00t_n15"
    # Hub repo id or local directory in the hub layout; null = build from `arch_preset` + `arch`.
    base_model_path: Optional[str] = None
    # Hub revision (branch, tag or commit) when base_model_path is a repo id.
    revision: Optional[str] = None
    # true = random weights even when base_model_path is set (its config.json / eagle_config.json
    # are still used when they can be read locally; else the preset): full-size benchmarks without weights.
    random_init: bool = False
    # Architecture used without a base model: a preset shipped in gr00t_exp/model/assets/arch/.
    arch_preset: str = "gr00t_n15_3b"  # gr00t_n15_3b | gr00t_n15_tiny | gr00t_n16_3b | gr00t_n16_tiny
    # Overrides deep-merged into the preset's config.json dict; the key `eagle` is merged into
    # eagle_config.json instead (e.g. {eagle: {text_config: {hidden_size: 64}}}).
    arch: dict[str, Any] = field(default_factory=dict)
    # Overrides of the action chunk (null = from the architecture / checkpoint).
    action_horizon: Optional[int] = None
    max_action_dim: Optional[int] = None
    tune_llm: bool = False
    tune_visual: bool = False
    tune_projector: bool = True
    tune_diffusion_model: bool = True
    lora: LoraConfig = field(default_factory=LoraConfig)
    gradient_checkpointing: bool = False
    dtype: str = "float32"  # weights dtype: float32 | bfloat16
    # Frozen weights in training: auto = bfloat16 under bf16 autocast (they need no fp32 master
    # copy, and autocast would cast them to bf16 at every use), else as `dtype`. float32 | bfloat16.
    frozen_dtype: str = "auto"
    # torch.compile of the training forward (mode=train / bench=train): 1.5x samples/s for the 3B on
    # an H200 (docs/benchmarks.md); the first step compiles (about a minute).
    compile: bool = False
    compile_mode: Optional[str] = None  # torch.compile mode: null (default) | reduce-overhead | max-autotune
    compile_backend: str = "inductor"  # inductor | aot_eager | eager (the last two: no code generation)
    num_inference_timesteps: int = 4
    attn_implementation: str = "sdpa"  # sdpa | eager (LLM + SigLIP; the action head always uses SDPA)
    # Padded LLM query rows produce zeros (flash-attention behaviour the checkpoints were trained with).
    zero_padded_rows: bool = True


# --------------------------------------------------------------------------------------------
# Architecture config (hub config.json + eagle_config.json)
# --------------------------------------------------------------------------------------------


@dataclass
class DiTConfig:
    num_attention_heads: int = 32
    attention_head_dim: int = 48
    num_layers: int = 16
    cross_attention_dim: int = 2048
    output_dim: int = 1024
    dropout: float = 0.2
    final_dropout: bool = True
    interleave_self_attention: bool = True
    norm_type: str = "ada_norm"
    positional_embeddings: Optional[str] = None


@dataclass
class VLSelfAttentionConfig:
    num_attention_heads: int = 32
    attention_head_dim: int = 64
    num_layers: int = 4
    dropout: float = 0.2
    final_dropout: bool = True
    positional_embeddings: Optional[str] = None


@dataclass
class ActionHeadConfig:
    action_dim: int = 32
    action_horizon: int = 16
    add_pos_embed: bool = True
    backbone_embedding_dim: int = 2048
    hidden_size: int = 1024
    input_embedding_dim: int = 1536
    max_action_dim: int = 32
    max_state_dim: int = 64
    model_dtype: str = "float32"
    noise_beta_alpha: float = 1.5
    noise_beta_beta: float = 1.0
    noise_s: float = 0.999
    num_inference_timesteps: int = 4
    num_target_vision_tokens: int = 32
    num_timestep_buckets: int = 1000
    tune_diffusion_model: bool = True
    tune_projector: bool = True
    use_vlln: bool = True
    # Not in the hub json (upstream dataclass defaults).
    max_num_embodiments: int = 32
    max_seq_len: int = 1024
    diffusion_model_cfg: DiTConfig = field(default_factory=DiTConfig)
    vl_self_attention_cfg: VLSelfAttentionConfig = field(default_factory=VLSelfAttentionConfig)


@dataclass
class BackboneConfig:
    eagle_path: str = "NVEagle/eagle_er-qwen3_1_7B-Siglip2_400M_stage1_5_128gpu_er_v7_1mlp_nops"
    load_bf16: bool = False
    project_to_dim: Optional[int] = None
    reproject_vision: bool = False
    select_layer: int = 12
    tune_llm: bool = False
    tune_visual: bool = True
    use_flash_attention: bool = True


def _from_dict(cls, data: dict[str, Any], where: str):
    """Build dataclass `cls` from `data`, recursing into nested dataclass fields.

    Keys the dataclass does not know are kept aside by the caller (returned as the second value) so
    that a config.json written by another tool survives a load/save round trip.
    """
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            extra[key] = value
            continue
        default = known[key].default_factory() if callable(known[key].default_factory) else None
        if default is not None and hasattr(default, "__dataclass_fields__"):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: `{key}` must be an object, got {type(value).__name__}")
            sub, sub_extra = _from_dict(type(default), value, f"{where}.{key}")
            if sub_extra:
                extra[key] = sub_extra
            kwargs[key] = sub
        else:
            kwargs[key] = value
    return cls(**kwargs), extra


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `override` merged in (dicts recursively, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class HubArchConfig:
    """What the architecture configs of both families (N1.5, N1.6) share: presets, the runtime
    switches set after parsing, and the Eagle sub-config views. Subclasses are dataclasses with
    `eagle`, `extra`, `zero_padded_rows`, `attn_implementation` fields, `from_hub_dicts` and `validate`."""

    RUNTIME_OPTIONS = ("zero_padded_rows", "attn_implementation")
    ARCH_PRESETS: tuple[str, ...] = ()  # the family's shipped presets (assets/arch/<name>)

    def finish(self, eagle: dict[str, Any], extra: dict[str, Any], runtime: dict[str, Any]) -> Any:
        """Attach the Eagle config and the unmodelled config.json keys, apply the runtime switches,
        validate; returns self."""
        self.eagle = copy.deepcopy(eagle)
        self.extra = extra
        for key, value in runtime.items():
            if key not in self.RUNTIME_OPTIONS:
                raise TypeError(f"unknown runtime option {key!r}")
            setattr(self, key, value)
        self.validate()
        return self

    @classmethod
    def from_preset(cls, name: str, overrides: dict[str, Any] | None = None, **runtime: Any) -> Any:
        """A shipped preset (assets/arch/<name>) with `overrides` deep-merged (key `eagle` into
        eagle_config.json)."""
        config, eagle = load_preset(name, cls.ARCH_PRESETS)
        overrides = dict(overrides or {})
        eagle_over = overrides.pop("eagle", None) or {}
        return cls.from_hub_dicts(deep_merge(config, overrides), deep_merge(eagle, eagle_over), **runtime)

    # ---- views --------------------------------------------------------------------------
    @property
    def vision_config(self) -> dict[str, Any]:
        return self.eagle["vision_config"]

    @property
    def text_config(self) -> dict[str, Any]:
        return self.eagle["text_config"]

    @property
    def image_token_index(self) -> int:
        return int(self.eagle.get("image_token_index", 151669))


@dataclass
class Gr00tN15Config(HubArchConfig):
    """GR00T N1.5 architecture: hub `config.json` fields + the Eagle sub-config.

    `eagle` is the content of `eagle_config.json` (keys `vision_config` and `text_config` are read;
    the rest is kept for the round trip). Only the first `backbone_cfg.select_layer` Qwen3 layers
    are built whatever `text_config.num_hidden_layers` says.
    """

    ARCH_PRESETS = ARCH_PRESETS  # class constant, not a field (no annotation)

    backbone_cfg: BackboneConfig = field(default_factory=BackboneConfig)
    action_head_cfg: ActionHeadConfig = field(default_factory=ActionHeadConfig)
    eagle: dict[str, Any] = field(default_factory=dict)
    action_dim: int = 32
    action_horizon: int = 16
    hidden_size: int = 2048
    model_dtype: str = "float32"
    torch_dtype: str = "bfloat16"
    # Runtime switches (not written to config.json).
    zero_padded_rows: bool = True
    attn_implementation: str = "sdpa"
    # config.json keys this class does not model, kept for the round trip.
    extra: dict[str, Any] = field(default_factory=dict)

    RUNTIME_KEYS = ("zero_padded_rows", "attn_implementation", "eagle", "extra")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_hub_dicts(
        cls, config: dict[str, Any], eagle: dict[str, Any] | None = None, **runtime: Any
    ) -> Gr00tN15Config:
        """From a hub `config.json` dict and an `eagle_config.json` dict (None = N1.5 defaults)."""
        model_type = config.get("model_type", "gr00t_n1_5")
        if model_type != "gr00t_n1_5":
            raise ValueError(
                f"config.json: model_type is {model_type!r}, expected 'gr00t_n1_5' (GR00T N1.5). "
                "N1.6 checkpoints (model_type Gr00tN1d6) are GR00T N1.6: load them with "
                "gr00t_exp.model.load_pretrained (dispatches on model_type) or select model=gr00t_n16."
            )
        if eagle is None:
            eagle = load_preset("gr00t_n15_3b")[1]
        data = {k: v for k, v in config.items() if k not in cls.RUNTIME_KEYS}
        obj, extra = _from_dict(cls, data, "config.json")
        return obj.finish(eagle, extra, runtime)

    @property
    def backbone_dim(self) -> int:
        """Width of the backbone features handed to the action head."""
        p = self.backbone_cfg.project_to_dim
        return int(p) if p else int(self.text_config["hidden_size"])

    def validate(self) -> None:
        """Cross-field checks with messages naming the keys."""
        for key in ("vision_config", "text_config"):
            if key not in self.eagle:
                raise ValueError(f"eagle_config.json: missing `{key}`")
        ah = self.action_head_cfg
        if ah.backbone_embedding_dim != self.backbone_dim:
            raise ValueError(
                f"config.json: action_head_cfg.backbone_embedding_dim={ah.backbone_embedding_dim} but the "
                f"backbone gives {self.backbone_dim}-d features (eagle text_config.hidden_size / "
                "backbone_cfg.project_to_dim)"
            )
        dit = ah.diffusion_model_cfg
        if dit.num_attention_heads * dit.attention_head_dim != ah.input_embedding_dim:
            raise ValueError(
                "config.json: diffusion_model_cfg.num_attention_heads * attention_head_dim "
                f"({dit.num_attention_heads}*{dit.attention_head_dim}) must equal "
                f"action_head_cfg.input_embedding_dim ({ah.input_embedding_dim})"
            )
        vl = ah.vl_self_attention_cfg
        if vl.num_attention_heads * vl.attention_head_dim != ah.backbone_embedding_dim:
            raise ValueError(
                "config.json: vl_self_attention_cfg.num_attention_heads * attention_head_dim must equal "
                f"backbone_embedding_dim ({ah.backbone_embedding_dim})"
            )
        if dit.cross_attention_dim != ah.backbone_embedding_dim:
            raise ValueError(
                f"config.json: diffusion_model_cfg.cross_attention_dim={dit.cross_attention_dim} must equal "
                f"backbone_embedding_dim={ah.backbone_embedding_dim}"
            )
        if dit.norm_type != "ada_norm" or dit.positional_embeddings or vl.positional_embeddings:
            raise ValueError(
                "config.json: only norm_type 'ada_norm' without positional_embeddings is supported"
            )
        n_llm = int(self.text_config["num_hidden_layers"])
        if not 0 < self.backbone_cfg.select_layer <= n_llm:
            raise ValueError(
                f"config.json: backbone_cfg.select_layer={self.backbone_cfg.select_layer} must be in "
                f"1..{n_llm} (eagle text_config.num_hidden_layers)"
            )
        if ah.action_horizon > ah.max_seq_len:
            raise ValueError(f"action_horizon {ah.action_horizon} exceeds max_seq_len {ah.max_seq_len}")
        if self.eagle.get("use_pixel_shuffle", False) or int(self.eagle.get("mlp_connector_layers", 1)) != 1:
            raise ValueError(
                "eagle_config.json: only use_pixel_shuffle=false with mlp_connector_layers=1 (the N1.5 "
                "backbone) is supported"
            )
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(
                f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}"
            )

    def set_action_chunk(self, action_horizon: int | None = None, max_action_dim: int | None = None) -> None:
        """Override the action chunk: horizon (number of action tokens) and action width."""
        if action_horizon is not None:
            self.action_horizon = self.action_head_cfg.action_horizon = int(action_horizon)
        if max_action_dim is not None:
            d = int(max_action_dim)
            self.action_dim = self.action_head_cfg.action_dim = self.action_head_cfg.max_action_dim = d
        self.validate()

    # ---- serialisation -----------------------------------------------------------------
    def to_hub_dict(self, torch_dtype: str | None = None) -> dict[str, Any]:
        """The `config.json` content, in the upstream layout (upstream tools can read it)."""
        out = deep_merge(self.extra, {})
        for f in fields(self):
            if f.name in self.RUNTIME_KEYS:
                continue
            value = getattr(self, f.name)
            out[f.name] = (
                deep_merge(out.get(f.name, {}), asdict(value))
                if hasattr(value, "__dataclass_fields__")
                else value
            )
        out.setdefault("architectures", ["GR00T_N1_5"])
        out.setdefault("attn_implementation", None)
        out["model_type"] = "gr00t_n1_5"
        if torch_dtype is not None:
            out["torch_dtype"] = torch_dtype
        out.setdefault("transformers_version", "4.51.3")
        return dict(sorted(out.items()))

    def eagle_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.eagle)


def load_preset(name: str, presets: tuple[str, ...] = ARCH_PRESETS) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config.json, eagle_config.json) dicts of a shipped architecture preset (one of `presets`:
    a family's own)."""
    if name not in presets:
        raise ValueError(f"model.arch_preset={name!r} is unknown; choose one of {', '.join(presets)}")
    d = ARCH_DIR / name
    return json.loads((d / "config.json").read_text()), json.loads((d / "eagle_config.json").read_text())
