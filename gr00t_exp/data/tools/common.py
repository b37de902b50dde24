"""What every dataset tool needs: the dataset it works on and the run dir it writes to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gr00t_exp.data.synthetic import synthetic_from_cfg


def tool_dataset_path(cfg: Any) -> str:
    """The dataset a tool works on: tools.dataset, else data.sources[0].path, else the synthetic one
    (written on first use)."""
    tools = cfg.get("tools") or {}
    if tools.get("dataset"):
        return str(tools.dataset)
    data = cfg.data
    if data.get("kind") == "lerobot" and data.get("sources"):
        return str(data.sources[0].path)
    if data.get("kind") == "synthetic":
        return str(synthetic_from_cfg(cfg))
    raise ValueError(
        "no dataset given: set tools.dataset=/path/to/dataset (or data=pick_place / data=lerobot "
        "'data.sources=[{path:/path}]')"
    )


def tool_output_dir(cfg: Any) -> Path:
    """The run's output dir (cfg.paths.output_dir), created."""

    out = Path(str(cfg.paths.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    return out
