"""The one conversion of an embodiment config to the typed `EmbodimentConfig`.

Embodiment configs arrive as a composed DictConfig (`cfg.embodiment`), an `EmbodimentConfig`
dataclass, a plain dict (a checkpoint's stored training config) or an attribute object. They are
merged onto the schema here, once, so code downstream reads typed fields and needs no getters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gr00t_exp.data.config import EmbodimentConfig

_FIELDS = tuple(f.name for f in dataclasses.fields(EmbodimentConfig))


def embodiment_config(embodiment: Any) -> EmbodimentConfig:
    """`embodiment` as an `EmbodimentConfig` (interpolations resolved, defaults filled in)."""
    if isinstance(embodiment, EmbodimentConfig):
        return embodiment
    if OmegaConf.is_config(embodiment):
        # Resolve against the run config the node belongs to (${paths...}) before detaching it.
        plain: Any = OmegaConf.to_container(embodiment, resolve=True)
    elif isinstance(embodiment, Mapping):
        plain = dict(embodiment)
    elif dataclasses.is_dataclass(embodiment) and not isinstance(embodiment, type):
        plain = OmegaConf.to_container(OmegaConf.structured(embodiment), resolve=True)
    else:
        # An attribute object (e.g. a namespace in a script): take the schema's fields it has.
        plain = {f: getattr(embodiment, f) for f in _FIELDS if hasattr(embodiment, f)}
    name = plain.get("name", "?") if isinstance(plain, dict) else "?"
    try:
        merged = OmegaConf.merge(OmegaConf.structured(EmbodimentConfig), plain)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ValueError(
            f"embodiment {name!r} does not fit the embodiment schema (gr00t_exp/data/config.py "
            f"EmbodimentConfig): {e}; fix the key in conf/embodiment/{name}.yaml"
        ) from None
