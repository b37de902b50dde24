"""bench=model on the tiny model, CPU: the run writes the JSON and table the docs quote."""

from __future__ import annotations

import json

import pytest
import torch

from gr00t_exp.bench.model import _percentiles, format_table, run, time_fn


def test_percentiles_and_time_fn():
    p = _percentiles([1.0, 2.0, 3.0, 4.0, 10.0])
    assert p["p50_ms"] == 3.0 and p["n"] == 5 and 4.0 < p["p90_ms"] <= 10.0
    calls = []
    out = time_fn(lambda: calls.append(1), torch.device("cpu"), warmup=2, iters=5)
    assert len(calls) == 7 and out["n"] == 5 and out["p50_ms"] >= 0


@pytest.mark.timeout(300)
def test_bench_model_tiny_cpu(tmp_path):
    from gr00t_exp.config.compose import compose_config

    cfg = compose_config(
        [
            "mode=bench",
            "bench=model",
            "model=gr00t_n15_tiny",
            "bench.device=cpu",
            "bench.warmup=1",
            "bench.iters=2",
            "bench.batch_size=2",
            "+bench.params.variants=[eager]",
            "+bench.params.train_iters=2",
        ],
        output_dir=tmp_path,
    )
    assert run(cfg) == 0
    data = json.loads((tmp_path / "bench_model.json").read_text())
    eager = data["inference"]["eager"]
    for part in ("get_action", "backbone", "action_head"):
        assert eager[part]["n"] == 2 and eager[part]["p50_ms"] > 0
    tr = data["training"]["eager"]
    assert tr["batch_size"] == 2 and tr["samples_per_s"] > 0
    assert tr["trainable_params"] == sum(r["trainable"] for r in tr["summary"][:-1])
    assert data["meta"]["tokens_batch1"] > 256 and not data["errors"]
    table = format_table(data)
    assert "| get_action | eager |" in table and "train step (bs 2)" in table
