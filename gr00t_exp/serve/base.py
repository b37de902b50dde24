"""`BasePolicy`: the interface every served policy implements (docs/interfaces.md, Policy).

Subclasses set `self.spec` and implement `_predict(obs, options) -> (actions, timing)` on a
validated, always-batched `Observation`; this class validates the input (either wire format),
shapes the output like the input and records per-stage timings in milliseconds.
Imports numpy only.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from gr00t_exp_client.wire import ModalityConfigWire

from gr00t_exp.serve.observation import Observation, ObservationSpec, format_action, parse_observation
from gr00t_exp.serve.protocol import N15, N16, modality_configs


class BasePolicy:
    """get_action / get_modality_config / reset, in upstream's N1.5 (flat) or N1.6 (nested) form."""

    kind: str = "base"
    spec: ObservationSpec
    # Protocol generation `deploy.server.protocol=auto` speaks for this policy (serve/protocol.py).
    generation: str = N16
    # Largest batch accepted (the server sets deploy.server.max_batch); larger -> a clear error.
    max_batch: int = 64

    def get_action(self, observation: dict, options: dict | None = None) -> dict[str, np.ndarray]:
        """Un-normalised actions: `action.<key>` (16, D) / (B, 16, D) for flat input, `<key>` (B, 16, D)
        for nested input."""
        return self.get_action_with_info(observation, options)[0]

    def get_action_with_info(
        self, observation: dict, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        t0 = time.perf_counter()
        obs = parse_observation(observation, self.spec, max_batch=self.max_batch)
        t1 = time.perf_counter()
        actions, timing, extra = self._predict_with_info(obs, options)
        t2 = time.perf_counter()
        out = format_action(actions, obs)
        t3 = time.perf_counter()
        ms = {"validate": (t1 - t0) * 1e3}
        ms.update(timing)
        ms["postprocess"] = ms.get("postprocess", 0.0) + (t3 - t2) * 1e3
        ms["policy"] = (t3 - t0) * 1e3
        return out, {**extra, "timing_ms": ms, "batch_size": obs.batch_size}

    def _predict(self, obs: Observation, options: dict | None) -> tuple[dict[str, np.ndarray], dict]:
        raise NotImplementedError

    def _predict_with_info(
        self, obs: Observation, options: dict | None
    ) -> tuple[dict[str, np.ndarray], dict, dict[str, Any]]:
        """(actions, timing_ms, extra info keys); override to add info (ReplayPolicy's step)."""
        actions, timing = self._predict(obs, options)
        return actions, timing, {}

    def get_modality_config(self, generation: str = N15) -> dict[str, ModalityConfigWire]:
        """Upstream's `{"video"|"state"|"action"|"language": ModalityConfig}` in `generation`'s form
        (N1.5: prefixed keys, JSON text on the wire; N1.6: bare keys, a map)."""
        return modality_configs(self.spec, generation)

    def reset(self, options: dict | None = None) -> dict:
        return {}

    def model_card(self) -> dict[str, Any]:
        """What a client needs to check it talks to the right policy (served by `metadata`)."""
        return {"policy": self.kind, "generation": self.generation, **self.spec.describe()}


class ConstantPolicy(BasePolicy):
    """Returns the same action (default zeros) for every request: for wiring tests and benchmarks."""

    kind = "constant"

    def __init__(self, spec: ObservationSpec, value: float = 0.0, embodiment_tag: str = "new_embodiment"):
        self.spec = spec
        self.value = float(value)
        self.embodiment_tag = embodiment_tag

    def _predict(self, obs: Observation, options: dict | None) -> tuple[dict[str, np.ndarray], dict]:
        h = self.spec.action_horizon
        acts = {
            k: np.full((obs.batch_size, h, d), self.value, dtype=np.float32)
            for k, d in self.spec.action.items()
        }
        return acts, {}

    def model_card(self) -> dict[str, Any]:
        return {**super().model_card(), "embodiment_tag": self.embodiment_tag}
