"""Where each embodiment key lives on the robot.

The runner's full target vector is [all configured joints (deploy.robot.joints, by motor index) |
left hand 6 | right hand 6]. Each embodiment state/action key (`left_arm`, `right_hand`, ...) maps
to a slice of it through deploy.robot.parts; joints the embodiment does not drive (e.g. the waist
for an arms-only dataset) are held at their start pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gr00t_exp.robot.config import jattr
from gr00t_exp.robot.hands import N as HAND_DOF


def _bare(key: str, prefix: str) -> str:
    return key.split(".", 1)[1] if key.startswith(prefix + ".") else key


@dataclass
class RobotLayout:
    joint_names: list[str]
    state_keys: list[str]  # bare
    action_keys: list[str]
    video_keys: list[str]
    language_key: str
    index: dict[str, np.ndarray]  # bare key -> indices into the full vector

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def size(self) -> int:
        return self.n_joints + 2 * HAND_DOF

    @property
    def left_hand(self) -> slice:
        return slice(self.n_joints, self.n_joints + HAND_DOF)

    @property
    def right_hand(self) -> slice:
        return slice(self.n_joints + HAND_DOF, self.n_joints + 2 * HAND_DOF)

    def dim(self, key: str) -> int:
        return len(self.index[key])

    def state_vector(self, full: np.ndarray, keys: list[str]) -> np.ndarray:
        return np.concatenate([full[self.index[k]] for k in keys]) if keys else np.zeros(0)

    def driven(self) -> np.ndarray:
        """Mask of full-vector entries some action key writes."""
        m = np.zeros(self.size, bool)
        for k in self.action_keys:
            m[self.index[k]] = True
        return m

    @classmethod
    def build(cls, embodiment, robot) -> RobotLayout:
        joints = robot.joints
        names = sorted(joints, key=lambda n: int(jattr(joints[n], "index")))
        pos = {n: i for i, n in enumerate(names)}
        n = len(names)
        state_keys = [_bare(k, "state") for k in embodiment.state_keys]
        action_keys = [_bare(k, "action") for k in embodiment.action_keys]
        video_keys = [_bare(k, "video") for k in embodiment.video_keys]
        index: dict[str, np.ndarray] = {}
        for key in dict.fromkeys(state_keys + action_keys):
            if key not in robot.parts:
                raise KeyError(
                    f"embodiment key {key!r} has no entry in deploy.robot.parts (known: {sorted(robot.parts)}); "
                    "add it (kind arm + joint names, or kind hand + side)"
                )
            part = robot.parts[key]
            if part.kind == "arm":
                missing = [j for j in part.joints if j not in pos]
                if missing:
                    raise KeyError(
                        f"deploy.robot.parts.{key}: joints {missing} are not in deploy.robot.joints"
                    )
                index[key] = np.array([pos[j] for j in part.joints])
            elif part.kind == "hand":
                if part.side not in ("left", "right"):
                    raise ValueError(
                        f"deploy.robot.parts.{key}.side must be left or right, got {part.side!r}"
                    )
                off = n if part.side == "left" else n + HAND_DOF
                index[key] = np.arange(off, off + HAND_DOF)
            else:
                raise ValueError(f"deploy.robot.parts.{key}.kind must be arm or hand, got {part.kind!r}")
        modality = getattr(embodiment, "modality", None)
        if modality:
            for group, keys in (("state", state_keys), ("action", action_keys)):
                spec = modality.get(group, {}) if hasattr(modality, "get") else {}
                for k in keys:
                    if k in spec:
                        width = int(spec[k]["end"]) - int(spec[k]["start"])
                        if width != len(index[k]):
                            raise ValueError(
                                f"embodiment {embodiment.name}: {group}.{k} is {width}-D in its modality layout "
                                f"but deploy.robot.parts.{k} gives {len(index[k])} values; make them agree"
                            )
        lang = str(getattr(embodiment, "language_key", "annotation.human.action.task_description"))
        return cls(names, state_keys, action_keys, video_keys, lang, index)
