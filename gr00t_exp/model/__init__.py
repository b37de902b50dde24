"""GR00T N1.5 and N1.6 models: architecture, checkpoint I/O, build from the Hydra `model` config.

Heavy imports (torch, transformers) happen on first attribute access, so importing the package
for its config schema stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Gr00tN15": "gr00t_exp.model.gr00t_n15",
    "Gr00tN15Config": "gr00t_exp.model.config",
    "Gr00tN16": "gr00t_exp.model.n16.model",
    "Gr00tN16Config": "gr00t_exp.model.n16.config",
    "ModelConfig": "gr00t_exp.model.config",
    "build_model": "gr00t_exp.model.build",
    "load_pretrained": "gr00t_exp.model.checkpoint",
    "save_pretrained": "gr00t_exp.model.checkpoint",
    "CheckpointError": "gr00t_exp.model.checkpoint",
}

__all__ = [
    "CheckpointError",
    "Gr00tN15",
    "Gr00tN15Config",
    "Gr00tN16",
    "Gr00tN16Config",
    "ModelConfig",
    "build_model",
    "load_pretrained",
    "save_pretrained",
]

if TYPE_CHECKING:  # pragma: no cover
    from gr00t_exp.model.build import build_model
    from gr00t_exp.model.checkpoint import CheckpointError, load_pretrained, save_pretrained
    from gr00t_exp.model.config import Gr00tN15Config, ModelConfig
    from gr00t_exp.model.gr00t_n15 import Gr00tN15
    from gr00t_exp.model.n16.config import Gr00tN16Config
    from gr00t_exp.model.n16.model import Gr00tN16


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gr00t_exp.model' has no attribute {name!r}")
