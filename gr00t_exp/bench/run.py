"""mode=bench: dispatch on cfg.bench.name to `gr00t_exp.bench.<name>:run(cfg) -> int`."""

from __future__ import annotations

import importlib

from omegaconf import DictConfig


def run(cfg: DictConfig) -> int:
    name = str(cfg.bench.name)
    try:
        module = importlib.import_module(f"gr00t_exp.bench.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"gr00t_exp.bench.{name}":
            print(
                f"bench={name}: gr00t_exp/bench/{name}.py is not available yet (known: dataloader, model, train, serve, robot)"
            )
            return 2
        raise
    return int(module.run(cfg) or 0)
