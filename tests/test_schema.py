"""The composed config is typed: bad keys and values fail at composition with their names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from gr00t_exp.cli import MODES, ModeNotAvailable, resolve
from gr00t_exp.config.compose import compose_config as compose
from gr00t_exp.config.schema import Mode

ROOT = Path(__file__).resolve().parents[1]


def test_default_config_composes_with_schema_types():
    cfg = compose()
    assert cfg.mode.value == "train"
    assert cfg.data.kind == "synthetic"
    assert isinstance(cfg.trainer.optim.lr, float)
    assert list(cfg.embodiment.action_indices) == list(range(16))


def test_unknown_key_fails_with_its_name():
    with pytest.raises(ConfigCompositionException) as e:
        compose(["data.batchsize=3"])
    assert "batchsize" in str(e.value.__cause__ or e.value)


def test_wrong_type_fails_with_the_key():
    with pytest.raises(ConfigCompositionException) as e:
        compose(["trainer.max_steps=many"])
    msg = str(e.value.__cause__ or e.value)
    assert "max_steps" in msg


def test_unknown_mode_fails_listing_the_modes():
    with pytest.raises(ConfigCompositionException) as e:
        compose(["mode=fly"])
    assert "fly" in str(e.value.__cause__ or e.value)


def test_resolve_rejects_unknown_mode_names():
    with pytest.raises(ModeNotAvailable, match="unknown"):
        resolve("fly")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_resolves_to_a_callable(mode):
    assert callable(resolve(mode))


def test_run_py_exits_nonzero_on_a_bad_override():
    proc = subprocess.run(
        [sys.executable, "run.py", "trainer.no_such_key=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "no_such_key" in proc.stderr + proc.stdout


def test_the_mode_type_is_the_mode_table():
    assert [m.value for m in Mode] == list(MODES)
    assert str(Mode("eval")) == "eval"  # `${mode}` in paths
