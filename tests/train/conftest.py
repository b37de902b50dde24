"""Fixtures of the training tests: the real tiny model on a small synthetic dataset, CPU only."""

from __future__ import annotations

import pytest

from gr00t_exp.config.compose import compose_config


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One synthetic dataset per embodiment for the whole session (written once, then reused)."""
    return tmp_path_factory.mktemp("train_cache")


def fast_overrides(cache_dir, steps: int = 4, extra: list[str] | None = None) -> list[str]:
    """A few-step CPU run of the tiny model on a small synthetic dataset, no loggers / plots."""
    return [
        "experiment=demo",
        f"paths.cache_dir={cache_dir}",
        "data.synthetic.episodes=4",
        "data.synthetic.min_length=20",
        "data.synthetic.max_length=24",
        "data.synthetic.height=32",
        "data.synthetic.width=32",
        "data.batch_size=2",
        "data.num_workers=0",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={steps}",
        f"trainer.checkpoint_every_n_steps={steps}",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "trainer.progress_bar=none",
        "trainer.eval_after_fit=false",
        "logger=csv",
        *(extra or []),
    ]


@pytest.fixture
def make_cfg(cache_dir, tmp_path):
    def _make(steps: int = 4, extra: list[str] | None = None, out=None):
        return compose_config(fast_overrides(cache_dir, steps, extra), output_dir=out or tmp_path / "run")

    return _make
