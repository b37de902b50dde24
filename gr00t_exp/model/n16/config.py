"""GR00T N1.6 architecture config: the hub `config.json` (model_type `Gr00tN1d6`) + `eagle_config.json`.

N1.6 checkpoints write a flat config.json holding only the fields that differ from the class
defaults; every absent field takes the default below (the values of the released base model's
class, docs/upstream.md "N1.6 config defaults"). `eagle_config.json` (SigLIP-2 + Qwen3 sizes) sits beside it; without
it the shipped 3B backbone sizes apply (`assets/arch/gr00t_n16_3b/eagle_config.json`).

No torch import here: the config schema stays cheap to import.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

from gr00t_exp.model.config import HubArchConfig, _from_dict, deep_merge
from gr00t_exp.model.config import load_preset as _load_preset

MODEL_TYPE = "Gr00tN1d6"
N15_MODEL_TYPE = "gr00t_n1_5"
ARCH_PRESETS = ("gr00t_n16_3b", "gr00t_n16_tiny")
# Always written to config.json (the reference writes them whatever their value).
ALWAYS_WRITTEN = ("architectures", "model_type", "state_dropout_prob", "torch_dtype", "transformers_version")


@dataclass
class N16DiTConfig:
    """`diffusion_model_cfg` (AlternateVLDiT); cross_attention_dim is backbone_embedding_dim."""

    num_attention_heads: int = 32
    attention_head_dim: int = 48
    num_layers: int = 32
    output_dim: int = 1024
    dropout: float = 0.2
    final_dropout: bool = True
    interleave_self_attention: bool = True
    norm_type: str = "ada_norm"
    positional_embeddings: Optional[str] = None


@dataclass
class Gr00tN16Config(HubArchConfig):
    """Every `Gr00tN1d6Config` field; those the model uses are validated in `validate`."""

    ARCH_PRESETS = ARCH_PRESETS  # class constant, not a field (no annotation)

    # ---- backbone
    model_name: str = "nvidia/Eagle-Block2A-2B-v2"
    model_revision: Optional[str] = None
    backbone_model_type: str = "eagle"
    select_layer: int = 16
    reproject_vision: bool = False
    use_flash_attention: bool = True
    load_bf16: bool = True
    backbone_embedding_dim: int = 2048
    backbone_trainable_params_fp32: bool = True
    tune_llm: bool = False
    tune_visual: bool = False
    tune_top_llm_layers: int = 4
    # ---- action head
    action_horizon: int = 16
    max_state_dim: int = 29
    max_action_dim: int = 29
    hidden_size: int = 1024
    input_embedding_dim: int = 1536
    max_seq_len: int = 1024
    max_num_embodiments: int = 32
    add_pos_embed: bool = True
    use_vlln: bool = True
    tune_vlln: bool = True
    tune_projector: bool = True
    tune_diffusion_model: bool = True
    use_alternate_vl_dit: bool = True
    attend_text_every_n_blocks: int = 2
    attn_dropout: float = 0.2
    noise_beta_alpha: float = 1.5
    noise_beta_beta: float = 1.0
    noise_s: float = 0.999
    num_inference_timesteps: int = 4
    num_timestep_buckets: int = 1000
    state_dropout_prob: float = 0.0
    state_additive_noise_scale: float = 0.0
    model_dtype: str = "bfloat16"
    diffusion_model_cfg: N16DiTConfig = field(default_factory=N16DiTConfig)
    # ---- processor settings the reference keeps in the model config
    use_relative_action: bool = False
    apply_sincos_state_encoding: bool = False
    formalize_language: bool = True
    shortest_image_edge: int = 256
    crop_fraction: float = 0.95
    image_crop_size: Optional[list[int]] = None
    image_target_size: Optional[list[int]] = None
    random_rotation_angle: Optional[int] = None
    color_jitter_params: Optional[dict[str, float]] = None
    use_albumentations_transforms: bool = True
    eagle_collator: bool = False
    collator_overwrite_image_inputs: bool = False
    # ---- written by save_pretrained
    architectures: list[str] = field(default_factory=lambda: ["Gr00tN1d6"])
    torch_dtype: str = "bfloat16"
    transformers_version: str = "4.51.3"
    # ---- runtime (never written)
    eagle: dict[str, Any] = field(default_factory=dict)
    zero_padded_rows: bool = True
    attn_implementation: str = "sdpa"
    extra: dict[str, Any] = field(default_factory=dict)

    RUNTIME_KEYS = ("zero_padded_rows", "attn_implementation", "eagle", "extra")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_hub_dicts(
        cls, config: dict[str, Any], eagle: dict[str, Any] | None = None, **runtime: Any
    ) -> Gr00tN16Config:
        """From a `config.json` dict (absent fields = defaults) and an `eagle_config.json` dict."""
        model_type = config.get("model_type")
        if model_type != MODEL_TYPE:
            hint = (
                " This is a GR00T N1.5 checkpoint: load it with gr00t_exp.model.load_pretrained (which "
                "dispatches on model_type) or select model=gr00t_n15."
                if model_type == N15_MODEL_TYPE
                else ""
            )
            raise ValueError(
                f"config.json: model_type is {model_type!r}, expected {MODEL_TYPE!r} (GR00T N1.6).{hint}"
            )
        if eagle is None:
            eagle = load_preset("gr00t_n16_3b")[1]
        data = {k: v for k, v in config.items() if k not in (*cls.RUNTIME_KEYS, "model_type")}
        obj, extra = _from_dict(cls, data, "config.json")
        return obj.finish(eagle, extra, runtime)

    # ---- views --------------------------------------------------------------------------

    @property
    def downsample_ratio(self) -> float:
        return float(self.eagle.get("downsample_ratio", 0.5))

    @property
    def unshuffle_factor(self) -> int:
        """Pixel-unshuffle factor: 2 for downsample_ratio 0.5 (2x2 patches -> one token)."""
        return round(1 / self.downsample_ratio)

    @property
    def action_dim(self) -> int:
        return self.max_action_dim

    def validate(self) -> None:
        """Cross-field checks; messages name the file and key."""
        for key in ("vision_config", "text_config"):
            if key not in self.eagle:
                raise ValueError(f"eagle_config.json: missing `{key}`")
        llm_dim = int(self.text_config["hidden_size"])
        if self.backbone_embedding_dim != llm_dim:
            raise ValueError(
                f"config.json: backbone_embedding_dim={self.backbone_embedding_dim} but eagle_config.json "
                f"text_config.hidden_size={llm_dim} (N1.6 has no projection between them)"
            )
        dit = self.diffusion_model_cfg
        if dit.num_attention_heads * dit.attention_head_dim != self.input_embedding_dim:
            raise ValueError(
                "config.json: diffusion_model_cfg.num_attention_heads * attention_head_dim "
                f"({dit.num_attention_heads}*{dit.attention_head_dim}) must equal input_embedding_dim "
                f"({self.input_embedding_dim})"
            )
        if dit.norm_type != "ada_norm" or dit.positional_embeddings:
            raise ValueError(
                "config.json: diffusion_model_cfg: only norm_type 'ada_norm' without positional_embeddings"
            )
        if not (self.use_alternate_vl_dit and dit.interleave_self_attention):
            raise ValueError(
                "config.json: only use_alternate_vl_dit=true with interleave_self_attention=true (the "
                "released N1.6 DiT) is supported"
            )
        if self.attend_text_every_n_blocks < 1:
            raise ValueError("config.json: attend_text_every_n_blocks must be >= 1")
        n_llm = int(self.text_config["num_hidden_layers"])
        if not 0 < self.select_layer <= n_llm:
            raise ValueError(
                f"config.json: select_layer={self.select_layer} must be in 1..{n_llm} "
                "(eagle_config.json text_config.num_hidden_layers)"
            )
        if not 0 <= self.tune_top_llm_layers <= self.select_layer:
            raise ValueError(
                f"config.json: tune_top_llm_layers={self.tune_top_llm_layers} must be in 0..select_layer "
                f"({self.select_layer})"
            )
        if self.action_horizon > self.max_seq_len:
            raise ValueError(
                f"config.json: action_horizon {self.action_horizon} exceeds max_seq_len {self.max_seq_len}"
            )
        if (
            not self.eagle.get("use_pixel_shuffle", True)
            or int(self.eagle.get("mlp_connector_layers", 2)) != 2
        ):
            raise ValueError(
                "eagle_config.json: N1.6 needs use_pixel_shuffle=true and mlp_connector_layers=2"
            )
        vc = self.vision_config
        if vc.get("use_rope", False) or vc.get("use_windows_attn", False):
            raise ValueError(
                "eagle_config.json: vision_config use_rope / use_windows_attn true is not supported "
                "(the released N1.6 tower has both false)"
            )
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(
                f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}"
            )

    def set_action_chunk(self, action_horizon: int | None = None, max_action_dim: int | None = None) -> None:
        if action_horizon is not None:
            self.action_horizon = int(action_horizon)
        if max_action_dim is not None:
            self.max_action_dim = int(max_action_dim)
        self.validate()

    # ---- serialisation -----------------------------------------------------------------
    def to_hub_dict(self, torch_dtype: str | None = None) -> dict[str, Any]:
        """config.json as the reference writes it: non-default fields + the always-written ones."""
        default = Gr00tN16Config()
        out = deep_merge(self.extra, {})
        for f in fields(self):
            if f.name in self.RUNTIME_KEYS:
                continue
            value = getattr(self, f.name)
            if hasattr(value, "__dataclass_fields__"):
                value = asdict(value)
                base = asdict(getattr(default, f.name))
            else:
                base = getattr(default, f.name)
            if value != base or f.name in ALWAYS_WRITTEN:
                out[f.name] = copy.deepcopy(value)
        out["model_type"] = MODEL_TYPE
        if torch_dtype is not None:
            out["torch_dtype"] = torch_dtype
        return dict(sorted(out.items()))

    def eagle_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.eagle)


def load_preset(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config.json, eagle_config.json) dicts of a shipped N1.6 architecture preset."""
    return _load_preset(name, ARCH_PRESETS)
