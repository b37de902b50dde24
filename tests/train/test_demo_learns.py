"""The demo (`python run.py`, experiment=demo as shipped) really learns: its held-out open-loop MSE
is clearly below the predict-the-training-mean baseline. The full recipe on CPU (a few minutes)."""

from __future__ import annotations

import json

import pytest

from gr00t_exp.config.compose import compose_config
from gr00t_exp.train.run import run


@pytest.mark.slow
def test_demo_beats_the_mean_baseline(tmp_path):
    out = tmp_path / "demo"
    cfg = compose_config(
        [f"paths.cache_dir={tmp_path / 'cache'}", "trainer.progress_bar=none", "logger=csv"], output_dir=out
    )
    assert cfg.task_name == "demo"  # the default job, unchanged but for paths and the progress bar
    value = run(cfg)
    metrics = json.loads((out / "eval" / "metrics.json").read_text())["summary"]
    model, baseline = metrics["overall"]["mse"], metrics["baseline"]["mse"]
    assert model < 0.6 * baseline, (model, baseline)
    for group in metrics["groups"].values():  # every joint group learned, not only the average
        assert group["model"]["mse"] < group["baseline"]["mse"]
    # val/open_loop_mse (what the best checkpoint and sweeps use) and the eval agree on the units.
    assert 1 / 3 < value / metrics["normalized_mse"] < 3
