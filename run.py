"""Entry point: `python run.py [mode=...] [experiment=...] [overrides...]`."""

import sys

import hydra
from omegaconf import DictConfig

from gr00t_exp.cli import ModeNotAvailable, dispatch
from gr00t_exp.config.schema import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> int | float:
    try:
        code = dispatch(cfg)
    except ModeNotAvailable as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    # Hydra drops the task's return value; a non-zero exit must leave through SystemExit.
    # A float is a successful run's objective (sweepers read it as the job's return value).
    if not isinstance(code, float) and code:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
