"""Robot tests: real cyclonedds on loopback (`lo`), a random DDS domain per test."""

from __future__ import annotations

import random

import pytest

cyclonedds = pytest.importorskip("cyclonedds", reason="cyclonedds 0.10.2 not installed (make setup)")


@pytest.fixture
def domain_id() -> int:
    # 0 is the real robot's domain and 1 the sims'; stay well clear of both (cyclonedds allows 0..232).
    return random.randint(20, 230)
