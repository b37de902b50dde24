"""One typed embodiment layout (keys, slices, widths) and the embodiment-tag id tables."""

from gr00t_exp.embodiment.convert import embodiment_config
from gr00t_exp.embodiment.ids import (
    UnknownEmbodimentTagError,
    families,
    family_of,
    projector_index,
    projector_table,
)
from gr00t_exp.embodiment.keys import GROUPS, bare, prefixed, split_key
from gr00t_exp.embodiment.layout import EmbodimentLayout, EmbodimentLayoutError, KeySpec, ViewSpec

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
