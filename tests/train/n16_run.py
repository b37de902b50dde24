"""A tiny GR00T N1.6 fine-tune on CPU (experiment=g1_inspire_n16_tiny), shared by the N1.6 tests.

The synthetic G1 + Inspire dataset's frames are 48 x 64, the size of the robot rig's camera splits
(tests/robot/rig.py), so one export serves the policy, evaluation and runner tests alike.
"""

from __future__ import annotations

from pathlib import Path

from gr00t_exp.config.compose import compose_config
from gr00t_exp.train.run import run


def n16_overrides(cache_dir: Path, steps: int = 2, extra: list[str] | None = None) -> list[str]:
    return [
        "experiment=g1_inspire_n16_tiny",
        f"paths.cache_dir={cache_dir}",
        "data.synthetic.episodes=3",
        "data.synthetic.min_length=18",
        "data.synthetic.max_length=20",
        "data.synthetic.height=48",
        "data.synthetic.width=64",
        "data.batch_size=2",
        "data.num_workers=0",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={steps}",
        f"trainer.checkpoint_every_n_steps={steps}",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "trainer.progress_bar=none",
        "trainer.eval_after_fit=false",
        "trainer.export_best=false",
        "logger=csv",
        *(extra or []),
    ]


def train_tiny_n16(
    out_dir: Path, cache_dir: Path, steps: int = 2, extra: list[str] | None = None
) -> int | float:
    """Run mode=train; returns what `run` returns (the monitored metric, or 2 on a pre-flight error)."""
    return run(compose_config(n16_overrides(cache_dir, steps, extra), output_dir=out_dir))
