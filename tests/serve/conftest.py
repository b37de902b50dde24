"""Serving fixtures: small specs, policies, servers on ephemeral loopback ports."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gr00t_exp.serve.base import ConstantPolicy
from gr00t_exp.serve.observation import ObservationSpec
from tests.fixtures import shared_path

LANG = "annotation.human.action.task_description"


def small_spec(**kw) -> ObservationSpec:
    base = dict(
        video={"ego_view": (48, 64), "wrist_view": (48, 64)},
        state={"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6},
        action={"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6},
        language_key=LANG,
    )
    base.update(kw)
    return ObservationSpec(**base)


def flat_obs(spec: ObservationSpec, batch: int | None = None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    pre = () if batch is None else (batch,)
    obs = {}
    for k, res in spec.video.items():
        h, w = res or (48, 64)
        obs[f"video.{k}"] = rng.integers(0, 255, (*pre, spec.video_horizon, h, w, 3), dtype=np.uint8)
    for k, d in spec.state.items():
        obs[f"state.{k}"] = rng.standard_normal((*pre, spec.state_horizon, d))
    obs[spec.language_key] = ["pick up the apple"] * (batch or 1)
    return obs


def nested_obs(spec: ObservationSpec, batch: int = 1, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "video": {
            k: rng.integers(0, 255, (batch, spec.video_horizon, *(res or (48, 64)), 3), dtype=np.uint8)
            for k, res in spec.video.items()
        },
        "state": {
            k: rng.standard_normal((batch, spec.state_horizon, d)).astype(np.float32)
            for k, d in spec.state.items()
        },
        "language": {spec.language_key: [["pick up the apple"]] * batch},
    }


class SlowPolicy(ConstantPolicy):
    """Sleeps in get_action (released GIL) so tests can probe concurrency."""

    kind = "slow"

    def __init__(self, spec, delay_s: float = 0.5):
        super().__init__(spec, value=1.0)
        self.delay_s = delay_s
        self.started = threading.Event()

    def _predict(self, obs, options):
        self.started.set()
        time.sleep(self.delay_s)
        return super()._predict(obs, options)


@pytest.fixture
def spec() -> ObservationSpec:
    return small_spec()


@pytest.fixture
def const_policy(spec) -> ConstantPolicy:
    return ConstantPolicy(spec, value=0.5, embodiment_tag="new_embodiment")


@pytest.fixture(scope="session")
def picknplace() -> Path:
    """The read-only demo dataset robot_sim.PickNPlace (skips when missing, fails under CI=true)."""
    return shared_path("datasets", "robot_sim.PickNPlace", "meta", "info.json").parents[1]
