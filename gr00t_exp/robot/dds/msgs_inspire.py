"""Inspire FTP hand messages (module `inspire`, as the inspire_hand_ws driver defines them).

Per-hand topics `rt/inspire_hand/ctrl/{l,r}` and `rt/inspire_hand/state/{l,r}`; values are int16
in 0..1000 with 1000 = open (docs/g1_interfaces.md). Type names
``inspire::inspire_hand_ctrl`` / ``inspire::inspire_hand_state``; six-element bounded sequences.
"""

from dataclasses import dataclass, field

import cyclonedds.idl as idl
import cyclonedds.idl.annotations as annotate
import cyclonedds.idl.types as types

# `mode` bitmask of inspire_hand_ctrl: which *_set arrays the driver writes to the hand.
MODE_ANGLE = 0b0001
MODE_POSITION = 0b0010
MODE_FORCE = 0b0100
MODE_SPEED = 0b1000


def _six() -> list[int]:
    return [0] * 6


@dataclass
@annotate.final
@annotate.autoid("sequential")
class inspire_hand_ctrl(idl.IdlStruct, typename="inspire.inspire_hand_ctrl"):  # noqa: N801 (DDS name)
    pos_set: types.sequence[types.int16, 6] = field(default_factory=_six)
    angle_set: types.sequence[types.int16, 6] = field(default_factory=_six)
    force_set: types.sequence[types.int16, 6] = field(default_factory=_six)
    speed_set: types.sequence[types.int16, 6] = field(default_factory=_six)
    mode: types.int8 = 0


@dataclass
@annotate.final
@annotate.autoid("sequential")
class inspire_hand_state(idl.IdlStruct, typename="inspire.inspire_hand_state"):  # noqa: N801
    pos_act: types.sequence[types.int16, 6] = field(default_factory=_six)
    angle_act: types.sequence[types.int16, 6] = field(default_factory=_six)
    force_act: types.sequence[types.int16, 6] = field(default_factory=_six)
    current: types.sequence[types.int16, 6] = field(default_factory=_six)
    err: types.sequence[types.uint8, 6] = field(default_factory=_six)
    status: types.sequence[types.uint8, 6] = field(default_factory=_six)
    temperature: types.sequence[types.uint8, 6] = field(default_factory=_six)
