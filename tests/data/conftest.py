"""Shared fixtures of the data tests (also used by the data-pipeline tests).

- `pick_place`: the read-only demo dataset robot_sim.PickNPlace (found by tests.fixtures: skips if absent,
  fails under CI=true). Never write into it;
  use `pick_place_copy` for tests that corrupt files.
- `synthetic_dataset`: a small synthetic GR1 arms-only dataset (real H.264 mp4s), written once per session.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.fixtures import REPO_ROOT, shared_path, shared_root


def tree_hash(root: Path) -> str:
    """Hash of every path, size, mtime and content under root (detects any change)."""
    h = hashlib.sha256()
    for p in sorted(Path(root).rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            st = p.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


@pytest.fixture(scope="session")
def pick_place() -> Path:
    return shared_path("datasets", "robot_sim.PickNPlace", "meta", "info.json").parents[1]


@pytest.fixture
def pick_place_copy(pick_place: Path, tmp_path: Path) -> Path:
    """A writable copy of the demo dataset (for corrupting tests)."""
    dst = tmp_path / "robot_sim.PickNPlace"
    shutil.copytree(pick_place, dst)
    return dst


@pytest.fixture(scope="session")
def gr1_embodiment():
    """The gr1_arms_only embodiment config, composed from conf/embodiment/gr1_arms_only.yaml."""
    from omegaconf import OmegaConf

    from gr00t_exp.data.config import EmbodimentConfig

    schema = OmegaConf.structured(EmbodimentConfig)
    return OmegaConf.merge(schema, OmegaConf.load(REPO_ROOT / "conf" / "embodiment" / "gr1_arms_only.yaml"))


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory, gr1_embodiment) -> Path:
    """A 4-episode synthetic gr1_arms_only dataset (64x64 mp4, 20 fps, 24-40 frames per episode)."""
    from gr00t_exp.data.synthetic import write_synthetic_dataset

    out = tmp_path_factory.mktemp("synthetic") / "gr1_arms_only"
    return write_synthetic_dataset(
        out, gr1_embodiment, episodes=4, min_length=24, max_length=40, fps=20, height=64, width=64, seed=0
    )


@pytest.fixture
def synthetic_copy(synthetic_dataset: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "synthetic"
    shutil.copytree(synthetic_dataset, dst)
    return dst


@pytest.fixture(scope="session")
def hash_tree():
    """`hash_tree(path) -> str`: changes if anything under path changes."""
    return tree_hash


@pytest.fixture(scope="session")
def run_cli():
    """`run_cli(args, run_dir) -> CompletedProcess`: `python run.py *args` with hydra.run.dir=run_dir."""
    import subprocess
    import sys

    def _run(args: list[str], run_dir: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "GR00T_EXP_SHARED": str(shared_root()), "PROJECT_ROOT": str(REPO_ROOT)}
        return subprocess.run(
            [sys.executable, "run.py", *args, f"hydra.run.dir={run_dir}"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    return _run
