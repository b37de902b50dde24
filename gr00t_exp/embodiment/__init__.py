"""One typed embodiment layout (keys, slices, widths) and the embodiment-tag id tables.

`keys` and `ids` depend on nothing else in the package and load eagerly; the layout (which
reads `gr00t_exp.data.modality`, itself a user of `keys`) loads on first use, so the data layer
can import the prefix convention without an import cycle.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from gr00t_exp.embodiment.ids import (
    UnknownEmbodimentTagError,
    families,
    family_of,
    projector_index,
    projector_table,
)
from gr00t_exp.embodiment.keys import GROUPS, bare, prefixed, split_key

if TYPE_CHECKING:
    from gr00t_exp.embodiment.convert import embodiment_config
    from gr00t_exp.embodiment.layout import EmbodimentLayout, EmbodimentLayoutError, KeySpec, ViewSpec

_LAZY = {
    "embodiment_config": "gr00t_exp.embodiment.convert",
    "EmbodimentLayout": "gr00t_exp.embodiment.layout",
    "EmbodimentLayoutError": "gr00t_exp.embodiment.layout",
    "KeySpec": "gr00t_exp.embodiment.layout",
    "ViewSpec": "gr00t_exp.embodiment.layout",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gr00t_exp.embodiment' has no attribute {name!r}")


__all__ = [
    "GROUPS",
    "EmbodimentLayout",
    "EmbodimentLayoutError",
    "KeySpec",
    "UnknownEmbodimentTagError",
    "ViewSpec",
    "bare",
    "embodiment_config",
    "families",
    "family_of",
    "prefixed",
    "projector_index",
    "projector_table",
    "split_key",
]
