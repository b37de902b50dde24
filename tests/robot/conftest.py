"""Robot tests: real cyclonedds on loopback (`lo`), a random DDS domain per test."""

from __future__ import annotations

import random

import pytest

cyclonedds = pytest.importorskip("cyclonedds", reason="cyclonedds 0.10.2 not installed (make setup)")

from gr00t_exp.robot.fakes import FakeDfxHands, FakeG1  # noqa: E402 (needs cyclonedds)


@pytest.fixture
def domain_id() -> int:
    # 0 is the real robot's domain and 1 the sims'; stay well clear of both (cyclonedds allows 0..232).
    return random.randint(20, 230)


@pytest.fixture
def rig(domain_id):
    """A fake G1 and fake DFX hands on loopback."""
    g1 = FakeG1(domain_id).start()
    hands = FakeDfxHands(domain_id).start()
    yield g1, hands
    g1.stop()
    hands.stop()
