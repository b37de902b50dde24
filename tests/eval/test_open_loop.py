"""mode=eval on a trained export: metrics.json (per group, overall, baseline, boundaries) and plots."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from gr00t_exp.config.compose import compose_config
from gr00t_exp.eval.open_loop import EvalEpisodesError, eval_episodes, evaluate, run
from gr00t_exp.train.run import run as train

FAST = [
    "experiment=demo",
    "data.synthetic.episodes=3",
    "data.synthetic.min_length=20",
    "data.synthetic.max_length=24",
    "data.synthetic.height=32",
    "data.synthetic.width=32",
    "data.batch_size=2",
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "trainer.checkpoint_every_n_steps=2",
    "trainer.limit_val_batches=1",
    "trainer.progress_bar=none",
    "trainer.eval_after_fit=false",
    "trainer.export_best=false",
    "logger=none",
]


def test_eval_mode_on_an_export(tmp_path, capsys):
    cache = tmp_path / "cache"
    train(compose_config([*FAST, f"paths.cache_dir={cache}"], output_dir=tmp_path / "train"))
    export = tmp_path / "train" / "export" / "last"
    cfg = compose_config(
        [
            *FAST,
            f"paths.cache_dir={cache}",
            "mode=eval",
            f"eval.checkpoint={export}",
            "eval.max_steps_per_episode=20",
        ],
        output_dir=tmp_path / "eval",
    )
    assert run(cfg) == 0
    out = capsys.readouterr().out
    assert "overall" in out and "mean MSE" in out
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    s = m["summary"]
    assert set(s["groups"]) == {"left_arm", "right_arm", "left_hand", "right_hand"}
    assert s["steps"] == 20 and s["episodes"] == 1
    assert s["baseline"]["mse"] > 0 and s["overall"]["mse"] > 0
    assert {"pred_jump", "gt_jump", "pred_within_chunk_jump"} <= set(s["chunk_boundary"])
    assert list((tmp_path / "eval" / "plots").glob("episode_*.png"))
    # Deterministic: the same checkpoint and seed give the same numbers.
    again = evaluate(cfg, out_dir=tmp_path / "eval2", checkpoint=export)
    assert again["summary"]["overall"]["mse"] == s["overall"]["mse"]


def test_eval_without_checkpoint_fails_clearly(tmp_path, capsys):
    cfg = compose_config(["mode=eval"], output_dir=tmp_path)
    assert run(cfg) == 2
    assert "eval.checkpoint" in capsys.readouterr().err


def _meta(n: int) -> SimpleNamespace:
    return SimpleNamespace(root="/data/demo", episodes=[SimpleNamespace(index=i) for i in range(n)])


def test_eval_uses_the_datamodule_held_out_split():
    cfg = compose_config(["mode=eval", "data.val_episodes=2"])
    assert eval_episodes(cfg, _meta(5)) == [3, 4]


def test_eval_refuses_training_episodes_unless_asked(caplog):
    cfg = compose_config(["mode=eval", "data.val_episodes=0"])
    with pytest.raises(
        EvalEpisodesError, match=r"data.val_episodes=0 holds out no episode.*eval.allow_train_episodes=true"
    ):
        eval_episodes(cfg, _meta(4))
    allowed = compose_config(["mode=eval", "data.val_episodes=0", "eval.allow_train_episodes=true"])
    assert eval_episodes(allowed, _meta(4)) == [3]
    # explicit episodes are an explicit choice: evaluated, with a warning when they were trained on
    explicit = compose_config(["mode=eval", "data.val_episodes=1", "eval.episodes=[0,3]"])
    assert eval_episodes(explicit, _meta(4)) == [0, 3]
    assert "training episodes [0]" in caplog.text


def test_eval_mode_exits_2_with_the_fix_when_nothing_is_held_out(tmp_path, capsys):
    cache = tmp_path / "cache"
    cfg = compose_config(
        [
            *FAST,
            f"paths.cache_dir={cache}",
            "mode=eval",
            f"eval.checkpoint={tmp_path}",
            "data.val_episodes=0",
        ],
        output_dir=tmp_path / "eval",
    )
    assert run(cfg) == 2
    assert "eval.allow_train_episodes=true" in capsys.readouterr().err


def test_training_without_held_out_episodes_skips_the_evaluation_and_says_why(tmp_path, caplog):
    overrides = [o for o in FAST if o != "trainer.eval_after_fit=false"]
    cfg = compose_config(
        [
            *overrides,
            f"paths.cache_dir={tmp_path / 'cache'}",
            "data.val_episodes=0",
            "trainer.eval_after_fit=true",
        ],
        output_dir=tmp_path / "train",
    )
    train(cfg)  # the run itself succeeds
    assert (tmp_path / "train" / "export" / "last").is_dir()
    assert "open-loop evaluation skipped" in caplog.text and "data.val_episodes=0" in caplog.text
    assert not (tmp_path / "train" / "eval" / "metrics.json").exists()
