"""Compose the project's config from Python (tests, notebooks) exactly as `run.py` does."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from gr00t_exp.config.schema import register_configs

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(overrides: list[str] | None = None, output_dir: str | Path | None = None) -> DictConfig:
    """Return the composed, schema-checked config for `overrides`.

    `output_dir` replaces `${hydra:runtime.output_dir}` (there is no Hydra run outside run.py).
    """
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="config", overrides=list(overrides or []))
    with open_dict(cfg):
        cfg.paths.output_dir = (
            str(output_dir) if output_dir is not None else str(Path("outputs") / "interactive")
        )
    return cfg
