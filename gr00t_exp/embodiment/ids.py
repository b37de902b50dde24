"""Embodiment tag -> projector index, per model family (the tables in embodiment_ids.yaml).

The action head holds one state encoder / action encoder / decoder slice per embodiment; the
sample's `embodiment_id` selects it. Adding a family (or a tag) is an edit of the YAML file only.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

import yaml

IDS_FILE = "embodiment_ids.yaml"
DEFAULT_FAMILY = "gr00t_n15"


class UnknownEmbodimentTagError(ValueError):
    """A tag (or a model family) that has no projector index."""


@lru_cache(maxsize=1)
def _tables() -> Mapping[str, Mapping[str, int]]:
    text = resources.files("gr00t_exp.embodiment").joinpath(IDS_FILE).read_text()
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise ValueError(f"gr00t_exp/embodiment/{IDS_FILE}: expected a mapping family -> {{tag: index}}")
    out: dict[str, Mapping[str, int]] = {}
    for family, table in raw.items():
        if not isinstance(table, dict) or not all(isinstance(v, int) for v in table.values()):
            raise ValueError(f"gr00t_exp/embodiment/{IDS_FILE}: {family} must map tags to integer indices")
        if len(set(table.values())) != len(table):
            raise ValueError(f"gr00t_exp/embodiment/{IDS_FILE}: {family} gives two tags the same index")
        out[str(family)] = MappingProxyType({str(k): int(v) for k, v in table.items()})
    return MappingProxyType(out)


def families() -> list[str]:
    """The model families with a table (e.g. gr00t_n15, gr00t_n16)."""
    return list(_tables())


def family_of(model_name: str) -> str:
    """The family of a model config name: the longest family it starts with
    (`gr00t_n15_tiny` -> `gr00t_n15`); model config names begin with their family."""
    matches = [f for f in _tables() if str(model_name) == f or str(model_name).startswith(f + "_")]
    if not matches:
        raise UnknownEmbodimentTagError(
            f"model.name={model_name!r} belongs to no model family with an embodiment id table "
            f"({', '.join(_tables())}); name the model config <family>[_variant] or add its family to "
            f"gr00t_exp/embodiment/{IDS_FILE}"
        )
    return max(matches, key=len)


def projector_table(family: str = DEFAULT_FAMILY) -> Mapping[str, int]:
    """The read-only tag -> index table of a model family."""
    tables = _tables()
    if family not in tables:
        raise UnknownEmbodimentTagError(
            f"model family {family!r} has no embodiment id table; known: {', '.join(tables)} "
            f"(add one to gr00t_exp/embodiment/{IDS_FILE})"
        )
    return tables[family]


def projector_index(family: str, tag: str) -> int:
    """The projector index of `tag` in `family`; an unknown tag names the known ones."""
    table = projector_table(family)
    if tag not in table:
        known = ", ".join(f"{k} ({v})" for k, v in table.items())
        raise UnknownEmbodimentTagError(
            f"embodiment.embodiment_tag={tag!r} has no {family} projector index; use one of {known}; "
            "a robot the base model has not seen uses new_embodiment"
        )
    return table[tag]
