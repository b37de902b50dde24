"""Structured-config schemas of the `trainer` group and the optimiser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class OptimConfig:
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999])
    eps: float = 1e-8
    weight_decay: float = 1e-5
    warmup_ratio: float = 0.05
    scheduler: str = "cosine"


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: Any = 1
    num_nodes: int = 1
    strategy: Any = "auto"
    precision: str = "32-true"
    max_steps: int = 10000
    accumulate_grad_batches: int = 1
    gradient_clip_val: Optional[float] = 1.0
    val_check_interval: Optional[int] = 500
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 1000
    save_top_k: int = 5
    resume: Optional[str] = None  # path | auto
    tf32: bool = True
    deterministic: bool = False
    optim: OptimConfig = field(default_factory=OptimConfig)
