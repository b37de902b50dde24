"""Structured-config schemas of the `trainer` group and the optimiser.

Every key a `conf/trainer/*.yaml` sets must exist here: a typo then fails at composition with the
key's full name instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class OptimConfig:
    """AdamW + a warmup/decay schedule; defaults are upstream gr00t_finetune.py's."""

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999])
    eps: float = 1e-8
    weight_decay: float = 1e-5
    warmup_ratio: float = 0.05
    scheduler: str = "cosine"  # cosine | constant | linear
    # Biases and norm weights get no weight decay (as HF Trainer, which upstream uses).
    no_decay_for_bias_and_norm: bool = True
    # Fused (single-kernel) AdamW: null = on CUDA unless fp16 (16-mixed); true | false to force.
    fused: Optional[bool] = None


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"  # cpu | gpu | auto
    devices: Any = 1  # int, -1 (all) or a list of ids
    num_nodes: int = 1
    # "auto" | "ddp" | "fsdp" | a dict with _target_ (e.g. pytorch_lightning.strategies.DDPStrategy)
    strategy: Any = "auto"
    precision: str = "32-true"  # 32-true | bf16-mixed | 16-mixed
    max_steps: int = 10000
    # Length of the LR schedule; null = max_steps. Set it to stop a run early (a job chunk) and
    # continue it later with trainer.resume without changing the schedule.
    schedule_steps: Optional[int] = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: Optional[float] = 1.0
    val_check_interval: Optional[int] = 500  # optimiser steps between validations; null = off
    limit_val_batches: Optional[int] = 8  # validation batches per validation (null = all)
    num_sanity_val_steps: int = 0
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 1000
    save_top_k: int = 5  # periodic Lightning checkpoints kept (the newest ones); -1 = all
    resume: Optional[str] = None  # null | auto | a .ckpt path | a checkpoints directory
    resume_dir: Optional[str] = None  # where `resume=auto` looks; null = this run's output dir
    tf32: bool = True  # TF32 matmuls / convolutions on Ampere+ GPUs
    deterministic: bool = False
    # Metric the best checkpoint, the sweepers and `run()`'s return value use.
    monitor: str = "val/open_loop_mse"
    monitor_mode: str = "min"
    # Lightning checkpoints hold the trainable weights only when the base model is pretrained
    # (frozen weights are reloaded from it); `all` always stores every weight.
    ckpt_weights: str = "auto"  # auto | all | trainable
    export_last: bool = True  # GR00T hub layout export of the final weights (<run>/export/last)
    export_best: bool = True  # ... and of the best-validation checkpoint (<run>/export/best)
    eval_after_fit: bool = True  # run mode=eval on the held-out episodes after training
    progress_bar: str = "rich"  # rich | tqdm | none
    data_wait_warn_fraction: float = 0.2  # warn (once per log) when this share of step time waits on data
    profiler: Optional[str] = None  # null | simple | advanced | pytorch
    optim: OptimConfig = field(default_factory=OptimConfig)
