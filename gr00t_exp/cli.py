"""Mode dispatch: `python run.py mode=<mode>` calls one function with the composed config.

Entries are "module:function" strings imported lazily, so `mode=validate` never imports torch's
model code and a mode whose module is missing reports that clearly.
"""

from __future__ import annotations

import importlib
import logging

from omegaconf import DictConfig

log = logging.getLogger(__name__)

MODES: dict[str, str] = {
    "train": "gr00t_exp.train.run:run",
    "eval": "gr00t_exp.eval.open_loop:run",
    "serve": "gr00t_exp.serve.run:run",
    "robot": "gr00t_exp.robot.runner:run",
    "camera_server": "gr00t_exp.robot.camera_server:run",
    "export": "gr00t_exp.export.run:run",
    "bench": "gr00t_exp.bench.run:run",
    "validate": "gr00t_exp.data.tools.validate:run",
    "stats": "gr00t_exp.data.tools.stats:run",
    "inspect": "gr00t_exp.data.tools.inspect:run",
    "convert": "gr00t_exp.data.tools.convert:run",
    "derive_embodiment": "gr00t_exp.data.tools.derive:run",
}


class ModeNotAvailable(RuntimeError):
    pass


def resolve(mode: str):
    """Return the callable behind `mode`, or raise ModeNotAvailable with a clear message."""
    if mode not in MODES:
        raise ModeNotAvailable(f"mode={mode} is unknown; choose one of: {', '.join(MODES)}")
    module_name, func_name = MODES[mode].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("gr00t_exp"):
            raise ModeNotAvailable(
                f"mode={mode} is not available yet in this version of gr00t_exp ({module_name} is missing)."
            ) from e
        raise
    return getattr(module, func_name)


def dispatch(cfg: DictConfig) -> int | float:
    """Run the configured mode; return the process exit code, or a float: success with an
    objective value (mode=train returns its monitored metric for Hydra sweepers)."""
    mode = cfg.mode.value if hasattr(cfg.mode, "value") else str(cfg.mode)
    fn = resolve(mode)
    result = fn(cfg)
    if isinstance(result, float):
        return result
    return int(result or 0)
