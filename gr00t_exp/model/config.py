"""Structured-config schema of the `model` group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class LoraConfig:
    rank: int = 0  # 0 = off
    alpha: int = 16
    dropout: float = 0.1
    targets: list[str] = field(default_factory=lambda: ["action_head"])  # action_head | llm
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "to_q", "to_k", "to_v"])


@dataclass
class ModelConfig:
    name: str = "gr00t_n15"
    # Hub repo id or local directory in the hub layout; null = build from `arch`.
    base_model_path: Optional[str] = None
    random_init: bool = False
    # Architecture overrides (a config.json-like dict); used when random_init or no base model.
    arch: dict[str, Any] = field(default_factory=dict)
    tune_llm: bool = False
    tune_visual: bool = False
    tune_projector: bool = True
    tune_diffusion_model: bool = True
    lora: LoraConfig = field(default_factory=LoraConfig)
    gradient_checkpointing: bool = False
    dtype: str = "float32"  # weights dtype: float32 | bfloat16
    compile: bool = False
    num_inference_timesteps: int = 4
    attn_implementation: str = "sdpa"
    # Padded LLM query rows produce zeros (flash-attention behaviour the checkpoints were trained with).
    zero_padded_rows: bool = True
