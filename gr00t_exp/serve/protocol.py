"""The two upstream protocol generations a server can speak (docs/upstream.md "Wire formats").

Both generations send byte-identical requests for `ping` and `get_modality_config`, so a server
cannot tell them apart and must be told which one it speaks (`deploy.server.protocol`):

| | N1.5 (`RobotInferenceClient`) | N1.6 (`PolicyClient`) |
| --- | --- | --- |
| `get_modality_config` | `as_json` = JSON text, keys `video.x` / `state.x` / `action.x` | `as_json` = map for `ModalityConfig(**map)`, bare keys |
| `get_action` data | the flat observation | `{"observation": ..., "options": ...}` -> `[action, info]` |
| `reset` | (no such endpoint) | `{"options": ...}` -> info |

`get_action` and `reset` are unambiguous on the wire (an N1.5 observation never is exactly
`{"observation", "options"}`), so both call styles are answered in their own form whatever the
generation; the generation decides what cannot be told apart: the modality config.
`auto` follows the served policy: a checkpoint's config.json `model_type`, N1.6 for a replay
(upstream's replay server is N1.6's run_gr00t_server.py --dataset-path).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gr00t_exp_client.wire import ModalityConfigWire

from gr00t_exp.serve.observation import ObservationSpec

N15 = "n1.5"
N16 = "n1.6"
GENERATIONS = (N15, N16)
PROTOCOL_CHOICES = ("auto", *GENERATIONS)
# config.json model_type of each generation's checkpoints (docs/upstream.md)
MODEL_TYPES = {"gr00t_n1_5": N15, "Gr00tN1d6": N16}


def checkpoint_generation(ckpt_dir: str | Path) -> str:
    """The generation of a hub-layout checkpoint, from config.json's model_type (N1.5 if absent)."""
    path = Path(ckpt_dir) / "config.json"
    try:
        model_type = json.loads(path.read_text()).get("model_type", "gr00t_n1_5")
    except FileNotFoundError:
        return N15
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"{path}: model_type {model_type!r} is neither generation ({sorted(MODEL_TYPES)}); "
            "set deploy.server.protocol=n1.5|n1.6 explicitly"
        )
    return MODEL_TYPES[model_type]


def resolve_protocol(choice: str, policy: Any) -> str:
    """`deploy.server.protocol` -> n1.5 | n1.6; `auto` takes the policy's `generation`."""
    if choice not in PROTOCOL_CHOICES:
        raise ValueError(f"deploy.server.protocol={choice!r} is unknown; use one of {list(PROTOCOL_CHOICES)}")
    if choice != "auto":
        return choice
    generation = getattr(policy, "generation", N16)
    if generation not in GENERATIONS:
        raise ValueError(
            f"the {policy.kind} policy reports generation {generation!r}; set deploy.server.protocol=n1.5|n1.6"
        )
    return generation


def _action_configs(spec: ObservationSpec) -> list[dict[str, Any]]:
    """N1.6 ActionConfig maps (enum names, as upstream parses them) for the served action keys:
    keys decoded relative to a state key are RELATIVE to it; every key is joint space."""
    return [
        {
            "rep": "RELATIVE" if k in spec.relative_actions else "ABSOLUTE",
            "type": "NON_EEF",
            "format": "DEFAULT",
            "state_key": spec.relative_actions.get(k),
        }
        for k in spec.action
    ]


def modality_configs(spec: ObservationSpec, generation: str) -> dict[str, ModalityConfigWire]:
    """The `get_modality_config` reply of `generation` for a policy expecting `spec`."""
    n16 = generation == N16

    def keys(group: str, names: Any) -> list[str]:
        return [str(k) if n16 else f"{group}.{k}" for k in names]

    def mc(delta: list[int], modality_keys: list[str], **n16_fields: Any) -> ModalityConfigWire:
        if not n16:
            return ModalityConfigWire(delta, modality_keys)
        # Every field of N1.6's ModalityConfig dataclass, so ModalityConfig(**map) needs no defaults.
        return ModalityConfigWire(
            delta,
            modality_keys,
            as_map=True,
            sin_cos_embedding_keys=None,
            mean_std_embedding_keys=None,
            action_configs=n16_fields.get("action_configs"),
        )

    return {
        "video": mc(list(range(1 - spec.video_horizon, 1)), keys("video", spec.video)),
        "state": mc(list(range(1 - spec.state_horizon, 1)), keys("state", spec.state)),
        "action": mc(
            list(range(spec.action_horizon)),
            keys("action", spec.action),
            action_configs=_action_configs(spec) if n16 else None,
        ),
        # Language keys keep their full annotation.* name in both generations.
        "language": mc([0], [spec.language_key] if spec.language_key else []),
    }
