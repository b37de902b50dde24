"""The key prefix convention: `state.left_arm` (embodiment configs, wire format) <-> `left_arm`
(modality.json, statistics, the robot's parts).

Every module that adds or strips a `video.` / `state.` / `action.` / `annotation.` prefix calls
these functions, so the convention is written down once.
"""

from __future__ import annotations

# The modality groups of modality.json, in the order of an embodiment config.
GROUPS: tuple[str, ...] = ("video", "state", "action", "annotation")


def bare(key: str, group: str | None = None) -> str:
    """`state.left_arm` -> `left_arm`; a key without the prefix is returned unchanged.

    With `group`, only that group's prefix is stripped (an annotation key such as
    `human.action.task_description` keeps its inner dots); without it, any group's prefix is.
    """
    key = str(key)
    for g in (group,) if group is not None else GROUPS:
        if key.startswith(g + "."):
            return key[len(g) + 1 :]
    return key


def prefixed(group: str, key: str) -> str:
    """`left_arm` -> `state.left_arm` (idempotent: an already prefixed key is returned as is)."""
    if group not in GROUPS:
        raise ValueError(f"unknown modality group {group!r}; use one of {', '.join(GROUPS)}")
    return f"{group}.{bare(key, group)}"


def split_key(key: str) -> tuple[str, str]:
    """`state.left_arm` -> ("state", "left_arm"); a key without a known group prefix is an error."""
    group, sep, rest = str(key).partition(".")
    if not sep or group not in GROUPS or not rest:
        raise ValueError(
            f"key {key!r} has no modality prefix; write it as <group>.<name> with group one of "
            f"{', '.join(GROUPS)} (e.g. state.left_arm)"
        )
    return group, rest
