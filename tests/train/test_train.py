"""End-to-end training on CPU with the real tiny model: resume exactness, exports, bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from gr00t_exp.train.run import run


def losses(run_dir: Path) -> list[float]:
    """train/loss of every step, in order, from the CSV logger of the latest launch in `run_dir`."""
    latest = max((run_dir / "csv").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:]))
    return [float(r["train/loss"]) for r in csv.DictReader(latest.open()) if r.get("train/loss")]


def test_n_steps_equal_half_resume_half(make_cfg, tmp_path):
    n = 6
    full = tmp_path / "full"
    assert isinstance(run(make_cfg(n, ["trainer.checkpoint_every_n_steps=3"], out=full)), float)
    part = tmp_path / "part"
    # First half: the same LR schedule (schedule_steps) but stop at n/2, as an interrupted job would.
    run(make_cfg(n // 2, [f"trainer.schedule_steps={n}", "trainer.checkpoint_every_n_steps=3"], out=part))
    assert (part / "checkpoints" / "step=0000003.ckpt").is_file()
    first = losses(part)
    run(make_cfg(n, ["trainer.resume=auto", "trainer.checkpoint_every_n_steps=3"], out=part))
    second = losses(part)
    ref = losses(full)
    assert len(ref) == n and len(first) == n // 2 and len(second) == n - n // 2
    assert first + second == pytest.approx(ref, abs=1e-6)
    # Not trivially equal: the loss changes from step to step.
    assert len({round(v, 6) for v in ref}) > 1


def test_run_exports_hub_layout_with_metadata(make_cfg, tmp_path):
    out = tmp_path / "run"
    value = run(make_cfg(2, out=out))
    assert math.isfinite(value)
    exp = out / "export" / "last"
    assert (exp / "config.json").is_file()
    assert list(exp.glob("*.safetensors"))
    meta = json.loads((exp / "experiment_cfg" / "metadata.json").read_text())
    entry = meta["gr1"]
    assert set(entry["statistics"]["action"]) == {"left_arm", "right_arm", "left_hand", "right_hand"}
    assert entry["modalities"]["video"]["ego_view"]["resolution"] == [32, 32]
    info = entry["gr00t_exp"]
    assert info["config"]["embodiment"]["name"] == "gr1_arms_only"
    assert len(info["dataset"][0]["meta_sha256"]) == 64
    assert (exp / "experiment_cfg" / "config.yaml").is_file()
    assert (out / "export" / "best" / "config.json").is_file()
    # The export loads back into a model with the trained weights.
    from gr00t_exp.model import load_pretrained

    model = load_pretrained(exp)
    ckpt = torch.load(next((out / "checkpoints").glob("step=*.ckpt")), weights_only=False)
    sd = ckpt["state_dict"]
    name, p = next((n, p) for n, p in model.named_parameters() if n.startswith("action_head.model"))
    assert torch.allclose(p, sd[f"model.{name}"])


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["data=lerobot", "data.sources=[{path:/no/such/dataset}]"], "data.sources[0].path"),
        (["data=lerobot"], "give at least one dataset"),
        (["embodiment.state_keys=[state.left_arm,state.tail]"], "state.tail"),
        (["model.max_action_dim=8"], "max_action_dim"),
        (["model.action_horizon=8"], "action_horizon"),
        (["trainer.resume=/no/such.ckpt"], "trainer.resume"),
        (["trainer=gpu"] if not torch.cuda.is_available() else ["trainer.max_steps=0"], "trainer."),
    ],
)
def test_bad_input_fails_before_training_with_the_key(make_cfg, capsys, extra, needle):
    code = run(make_cfg(2, extra))
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err, err


def test_gradient_accumulation_counts_optimiser_steps(make_cfg, tmp_path):
    out = tmp_path / "acc"
    run(make_cfg(2, ["trainer.accumulate_grad_batches=2"], out=out))
    ckpt = torch.load(out / "checkpoints" / "step=0000002.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2
    # The checkpoint is written at the end of the 4th batch, before it counts as "completed".
    batches = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["ready"]
    assert batches == 4  # two batches per optimiser step
