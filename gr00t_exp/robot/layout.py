"""Where each embodiment key lives on the robot.

The runner's full vector is [all configured joints (deploy.robot.joints, by motor index) |
left hand 6 | right hand 6 | left extra dims | right extra dims]. Hands are held in Inspire units
(1 = open) and the extra dims (dataset hand dims that drive no finger, see handmap.py) in dataset
units. Each embodiment state/action key (`left_arm`, `right_hand`, ...) maps to entries of it through
deploy.robot.parts plus a per-entry affine map (`read` / `write`): identity for arms, the
HandMap's open/closed scaling for fingers. Joints the embodiment does not drive (e.g. the waist for
an arms-only dataset) are held at their start pose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from gr00t_exp.embodiment import EmbodimentLayout, prefixed
from gr00t_exp.robot.config import RobotConfig
from gr00t_exp.robot.handmap import HandMap
from gr00t_exp.robot.hands import N as HAND_DOF

log = logging.getLogger(__name__)


@dataclass
class RobotLayout:
    joint_names: list[str]
    state_keys: list[str]  # bare
    action_keys: list[str]
    video_keys: list[str]
    language_key: str
    index: dict[str, np.ndarray]  # bare key -> indices into the full vector
    hand_map: HandMap = field(default_factory=lambda: HandMap(6, np.arange(6), np.ones(6), np.zeros(6)))
    # bare key -> (scale, offset): dataset value = full[index] * scale + offset (None = identity)
    affine: dict[str, Optional[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def n_extra(self) -> int:
        """Extra (finger-less) dims per hand."""
        return self.hand_map.n_extra

    @property
    def size(self) -> int:
        return self.n_joints + 2 * HAND_DOF + 2 * self.n_extra

    @property
    def left_hand(self) -> slice:
        return slice(self.n_joints, self.n_joints + HAND_DOF)

    @property
    def right_hand(self) -> slice:
        return slice(self.n_joints + HAND_DOF, self.n_joints + 2 * HAND_DOF)

    @property
    def hands(self) -> slice:
        """Both hands' Inspire values: left 6 then right 6."""
        return slice(self.n_joints, self.n_joints + 2 * HAND_DOF)

    @property
    def extras(self) -> slice:
        """Both hands' extra dims (left then right), dataset units."""
        return slice(self.n_joints + 2 * HAND_DOF, self.size)

    def dim(self, key: str) -> int:
        return len(self.index[key])

    def read(self, full: np.ndarray, key: str) -> np.ndarray:
        """Key `key` in dataset units from a full vector (or a (T, size) array of them)."""
        v = np.asarray(full)[..., self.index[key]]
        a = self.affine.get(key)
        return v if a is None else v * a[0] + a[1]

    def write(self, full: np.ndarray, key: str, values: np.ndarray) -> None:
        """Store dataset-unit `values` of `key` into `full` (in place; (size,) or (T, size))."""
        a = self.affine.get(key)
        values = np.asarray(values, float)
        full[..., self.index[key]] = values if a is None else (values - a[1]) / a[0]

    def state_vector(self, full: np.ndarray, keys: list[str]) -> np.ndarray:
        return np.concatenate([self.read(full, k) for k in keys]) if keys else np.zeros(0)

    def driven(self) -> np.ndarray:
        """Mask of full-vector entries some action key writes."""
        m = np.zeros(self.size, bool)
        for k in self.action_keys:
            m[self.index[k]] = True
        return m

    @classmethod
    def build(cls, embodiment: EmbodimentLayout | object, robot: RobotConfig) -> RobotLayout:
        """embodiment: an EmbodimentLayout, or an embodiment config (its own `modality`, when it
        has one, gives the key widths); robot: the typed `deploy.robot` (runner.robot_config)."""
        emb = EmbodimentLayout.build(embodiment)
        joints = robot.joints
        names = sorted(joints, key=lambda n: int(joints[n].index))
        pos = {n: i for i, n in enumerate(names)}
        n = len(names)
        state_keys, action_keys, video_keys = emb.keys("state"), emb.keys("action"), emb.keys("video")
        keys = list(dict.fromkeys(state_keys + action_keys))
        ename = emb.name
        for key in keys:
            if key not in robot.parts:
                raise KeyError(
                    f"embodiment key {key!r} has no entry in deploy.robot.parts (known: {sorted(robot.parts)}); "
                    "add it (kind arm + joint names, or kind hand + side)"
                )
            part = robot.parts[key]
            if part.kind not in ("arm", "hand"):
                raise ValueError(f"deploy.robot.parts.{key}.kind must be arm or hand, got {part.kind!r}")
            if part.kind == "hand" and part.side not in ("left", "right"):
                raise ValueError(f"deploy.robot.parts.{key}.side must be left or right, got {part.side!r}")
        # (group, key) -> width, for the keys whose width the embodiment's modality gives.
        widths = {(g, k): w for g in ("state", "action") for k, w in emb.known_widths(g).items()}

        # One hand width for every hand key (state and action, left and right).
        hand_keys = [k for k in keys if robot.parts[k].kind == "hand"]
        hand_w = {prefixed(g, k): w for (g, k), w in widths.items() if k in hand_keys}
        if len(set(hand_w.values())) > 1:
            raise ValueError(
                f"embodiment {ename}: hand keys have different widths {hand_w}; deploy.robot.hands maps "
                "one hand width to the 6 Inspire fingers (use an embodiment with equal hand widths)"
            )
        hand_map = HandMap.from_config(
            robot.hands,
            next(iter(hand_w.values())) if hand_w else None,
            f"embodiment {ename} ({', '.join(f'{k} {w}-D' for k, w in hand_w.items()) or 'no modality widths'})",
        )
        ne = hand_map.n_extra
        scale, offset = hand_map.scale_offset()

        index: dict[str, np.ndarray] = {}
        affine: dict[str, Optional[tuple[np.ndarray, np.ndarray]]] = {}
        for key in keys:
            part = robot.parts[key]
            if part.kind == "arm":
                missing = [j for j in part.joints if j not in pos]
                if missing:
                    raise KeyError(
                        f"deploy.robot.parts.{key}: joints {missing} are not in deploy.robot.joints"
                    )
                index[key] = np.array([pos[j] for j in part.joints], dtype=int)
                affine[key] = None
            else:
                left = part.side == "left"
                fingers = n + (0 if left else HAND_DOF)
                extra = n + 2 * HAND_DOF + (0 if left else ne)
                idx = np.empty(hand_map.dim, dtype=int)
                idx[hand_map.finger_indices] = fingers + np.arange(HAND_DOF)
                idx[hand_map.extra] = extra + np.arange(ne)
                index[key] = idx
                affine[key] = None if hand_map.identity else (scale, offset)
        for (group, k), width in widths.items():
            if width != len(index[k]):
                raise ValueError(
                    f"embodiment {ename}: {group}.{k} is {width}-D in its modality layout "
                    f"but deploy.robot.parts.{k} gives {len(index[k])} values; make them agree"
                )
        if hand_keys and not hand_map.identity:
            # Once per run: say how the dataset's hands reach the Inspire fingers.
            extra_note = (
                f"; dataset dims {[int(i) for i in hand_map.extra]} drive no finger: observed as "
                + (
                    f"the last commanded value (initially {hand_map.extra_fill})"
                    if hand_map.extra_state == "last_command"
                    else f"{hand_map.extra_fill}"
                )
                + ", ignored on output"
                if ne
                else ""
            )
            log.warning(
                "deploy.robot.hands: %s (open=%s, closed=%s)%s",
                hand_map.describe(),
                hand_map.open.tolist(),
                hand_map.closed.tolist(),
                extra_note,
            )
        lang = prefixed("annotation", emb.language_key)
        return cls(names, state_keys, action_keys, video_keys, lang, index, hand_map, affine)
