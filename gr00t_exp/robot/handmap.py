"""The dataset's hand vector <-> the 6 Inspire fingers (deploy.robot.hands).

An Inspire hand has 6 DoF (pinky, ring, middle, index, thumb-bend, thumb-rotation; 1 = open,
0 = closed), but datasets store hands in other ways: 7 values per hand (the 28-D
`unitree_g1_inspire_2cameras` layout), another order, 0..1000, 1 = closed, radians. A HandMap says
which dataset dim drives each finger (`finger_indices`), which dataset values mean open and closed
per finger (`dataset_open` / `dataset_closed`: a linear map, so it also inverts), and what the
observation reports for dataset dims that drive no finger (`extra_state`, `extra_fill`); those dims
are never sent to the hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gr00t_exp.robot.hands import FINGERS
from gr00t_exp.robot.hands import N as N_FINGERS

EXTRA_STATES = ("last_command", "fill")


def _per_finger(values, key: str) -> np.ndarray:
    v = np.asarray(list(values), float)
    if v.shape == (1,):
        v = np.repeat(v, N_FINGERS)
    if v.shape != (N_FINGERS,) or not np.isfinite(v).all():
        raise ValueError(
            f"deploy.robot.hands.{key}={list(values)} must be 1 value (all fingers) or {N_FINGERS} finite "
            f"values in finger order {list(FINGERS)}"
        )
    return v


@dataclass(frozen=True)
class HandMap:
    dim: int  # width of one dataset hand vector
    finger_indices: np.ndarray  # (6,) dataset dim of each finger
    open: np.ndarray  # (6,) dataset value meaning fully open
    closed: np.ndarray  # (6,) dataset value meaning fully closed
    extra_state: str = "last_command"
    extra_fill: float = 0.0

    @property
    def extra(self) -> np.ndarray:
        """Dataset dims that drive no finger, ascending."""
        return np.setdiff1d(np.arange(self.dim), self.finger_indices)

    @property
    def n_extra(self) -> int:
        return self.dim - N_FINGERS

    @property
    def identity(self) -> bool:
        return (
            self.dim == N_FINGERS
            and list(self.finger_indices) == list(range(N_FINGERS))
            and np.all(self.open == 1.0)
            and np.all(self.closed == 0.0)
        )

    # Dataset = closed + inspire * (open - closed), per finger; extra dims pass through unchanged.
    def scale_offset(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset) per dataset dim: dataset = internal * scale + offset."""
        scale, offset = np.ones(self.dim), np.zeros(self.dim)
        scale[self.finger_indices] = self.open - self.closed
        offset[self.finger_indices] = self.closed
        return scale, offset

    def to_inspire(self, x: np.ndarray) -> np.ndarray:
        """(..., dim) dataset hand values -> (..., 6) Inspire values (not clipped)."""
        x = np.asarray(x, float)
        return (x[..., self.finger_indices] - self.closed) / (self.open - self.closed)

    def to_dataset(self, fingers: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """(..., 6) Inspire values (+ (..., n_extra) extra dims) -> (..., dim) dataset values."""
        fingers = np.asarray(fingers, float)
        out = np.empty(fingers.shape[:-1] + (self.dim,))
        out[..., self.finger_indices] = self.closed + fingers * (self.open - self.closed)
        if self.n_extra:
            out[..., self.extra] = self.extra_fill if extra is None else extra
        return out

    def describe(self) -> str:
        return (
            f"{self.dim}-D dataset hands; fingers {list(FINGERS)} <- dataset dims "
            f"{[int(i) for i in self.finger_indices]}"
        )

    @classmethod
    def from_config(cls, hands_cfg, dim: int | None, where: str = "the embodiment") -> HandMap:
        """Validated HandMap; `dim` = the dataset hand width (None: hands.dataset_dim, else 6)."""
        cfg_dim = getattr(hands_cfg, "dataset_dim", None)
        if dim is not None and cfg_dim is not None and int(cfg_dim) != int(dim):
            raise ValueError(
                f"deploy.robot.hands.dataset_dim={cfg_dim} but {where} has {dim}-D hands; "
                "set deploy.robot.hands.dataset_dim=null (taken from the embodiment) or to match"
            )
        dim = int(dim if dim is not None else (cfg_dim if cfg_dim is not None else N_FINGERS))
        fi = [int(i) for i in hands_cfg.finger_indices]
        if len(fi) != N_FINGERS or len(set(fi)) != N_FINGERS or min(fi) < 0 or max(fi) >= dim:
            raise ValueError(
                f"deploy.robot.hands.finger_indices={fi} does not fit the {dim}-D hand vectors of {where}: "
                f"give {N_FINGERS} distinct dataset dims in [0, {dim - 1}], one per Inspire finger "
                f"{list(FINGERS)} (e.g. deploy.robot.hands.finger_indices=[0,1,2,3,4,5])"
            )
        opn = _per_finger(hands_cfg.dataset_open, "dataset_open")
        cls_ = _per_finger(hands_cfg.dataset_closed, "dataset_closed")
        if np.any(opn == cls_):
            bad = [FINGERS[i] for i in np.flatnonzero(opn == cls_)]
            raise ValueError(
                f"deploy.robot.hands.dataset_open equals dataset_closed for {bad}: "
                "give the dataset values meaning fully open and fully closed (they must differ)"
            )
        es = str(getattr(hands_cfg, "extra_state", "last_command"))
        if es not in EXTRA_STATES:
            raise ValueError(f"deploy.robot.hands.extra_state={es!r} must be one of {list(EXTRA_STATES)}")
        return cls(dim, np.array(fi), opn, cls_, es, float(getattr(hands_cfg, "extra_fill", 0.0)))
