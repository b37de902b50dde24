"""Secrets never reach disk: a token in the config is redacted from the run's .hydra/ files and
from an export's experiment_cfg/ (gr00t_exp/config/redact.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gr00t_exp.config.compose import compose_config
from gr00t_exp.config.redact import REDACTED, redact, redact_override

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Token-" + "q" * 20


def _files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_redact_replaces_credentials_only():
    cfg = {"deploy": {"server": {"api_token": SECRET, "curve_secret_key_file": "keys/s.key_secret"},
                      "policy": {"api_token": None}}, "logger": [{"wandb_api_key": "k"}]}  # fmt: skip
    out = redact(cfg)
    assert out["deploy"]["server"] == {"api_token": REDACTED, "curve_secret_key_file": "keys/s.key_secret"}
    assert out["deploy"]["policy"]["api_token"] is None and out["logger"][0]["wandb_api_key"] == REDACTED
    assert redact_override(f"deploy.server.api_token={SECRET}") == f"deploy.server.api_token={REDACTED}"
    assert redact_override(f"++deploy.policy.api_token={SECRET}") == f"++deploy.policy.api_token={REDACTED}"
    assert redact_override("deploy.server.port=5555") == "deploy.server.port=5555"


def test_command_line_token_is_not_written_to_the_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "run.py", "mode=serve", "deploy.policy.kind=gr00t",  # no checkpoint: exits 2
         f"deploy.server.api_token={SECRET}", f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    hydra_dir = run_dir / ".hydra"
    assert {p.name for p in hydra_dir.iterdir()} >= {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert _files_containing(run_dir, SECRET) == []
    assert OmegaConf.load(hydra_dir / "config.yaml").deploy.server.api_token == REDACTED
    assert f"deploy.server.api_token={REDACTED}" in OmegaConf.load(hydra_dir / "overrides.yaml")


def test_export_does_not_carry_the_token(tmp_path, monkeypatch):
    model_pkg = pytest.importorskip("gr00t_exp.model")
    from gr00t_exp.train.checkpoint import export_hub

    def fake_save_pretrained(model, out_dir, metadata):  # the weights are not what is checked
        out = Path(out_dir)
        (out / "experiment_cfg").mkdir(parents=True)
        (out / "experiment_cfg" / "metadata.json").write_text(json.dumps(metadata))
        return out

    monkeypatch.setattr(model_pkg, "save_pretrained", fake_save_pretrained)
    cfg = compose_config([f"deploy.server.api_token={SECRET}"], output_dir=tmp_path)
    out = export_hub(None, tmp_path / "export", {"new_embodiment": {"statistics": {}, "modalities": {}}}, cfg)
    assert _files_containing(out, SECRET) == []
    meta = json.loads((out / "experiment_cfg" / "metadata.json").read_text())
    assert meta["new_embodiment"]["gr00t_exp"]["config"]["deploy"]["server"]["api_token"] == REDACTED
    assert OmegaConf.load(out / "experiment_cfg" / "config.yaml").deploy.server.api_token == REDACTED
