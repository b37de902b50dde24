"""bench=dataloader runs end to end on a tiny synthetic dataset and writes its figures."""

from __future__ import annotations

import json

import pytest

from gr00t_exp.bench.run import run
from gr00t_exp.config.compose import compose_config


@pytest.fixture(scope="module")
def synthetic_dataset(tmp_path_factory):
    from gr00t_exp.data.synthetic import write_synthetic_dataset

    emb = compose_config().embodiment
    out = tmp_path_factory.mktemp("bench") / "ds"
    return write_synthetic_dataset(out, emb, episodes=3, min_length=16, max_length=20, height=64, width=64)


def test_dataloader_bench_smoke(tmp_path, synthetic_dataset, capsys):
    cfg = compose_config(
        [
            "mode=bench",
            "bench=dataloader",
            "data=lerobot",
            f"data.sources=[{{path: {synthetic_dataset}}}]",
            f"paths.cache_dir={tmp_path}",
            "bench.batch_size=4",
            "+bench.params.backends=[pyav]",
            "+bench.params.workers=[0]",
            "+bench.params.cached_batches=2",
            "+bench.params.uncached_batches=1",
            "+bench.params.augment=[cpu,gpu]",
        ],
        output_dir=tmp_path / "out",
    )
    assert run(cfg) == 0
    out = capsys.readouterr().out
    assert "[pyav] cache build:" in out and "[pyav] cached" in out and "[pyav] uncached" in out
    res = json.loads((tmp_path / "out" / "bench_dataloader.json").read_text())
    rows = [r for r in res["rows"] if "cached" in r]
    assert {r["cached"] for r in rows} == {True, False}
    # gpu: the loader of data.augment_on=gpu, whose CPU side skips the video transform
    assert {(r["cached"], r["augment"]) for r in rows} == {
        (c, a) for c in (True, False) for a in ("cpu", "gpu")
    }
    for r in rows:
        assert r["samples_s_0w"] > 0 and r["decode_ms"] > 0 and r["transform_ms"] > 0 and r["collate_ms"] > 0
    assert any(r.get("cache_build_frames_s", 0) > 0 for r in res["rows"])


def test_unknown_bench_name(tmp_path, capsys):
    cfg = compose_config(["mode=bench", "bench.name=nope"], output_dir=tmp_path)
    assert run(cfg) == 2
    assert "not available yet" in capsys.readouterr().out
