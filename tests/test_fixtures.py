"""tests.fixtures: where reference data is looked for, and that a missing fixture skips locally but
fails under CI=true (so a green CI run means the reference tests ran)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import REPO_ROOT, shared_path, shared_root

PLAIN = """
from tests.fixtures import shared_path


def test_needs_a_fixture():
    shared_path("refdata", "gr00t_n15", "tiny", "model.safetensors")
"""

# The model tests' marker (a fixture behind pytest.mark.usefixtures), as tests/model uses it.
MARKER_CONFTEST = "from tests.model._model_refdata import tiny_refdata  # noqa: F401\n"
MARKER = """
from tests.model._model_refdata import needs_refdata


@needs_refdata
def test_marked():
    pass
"""


def _run_probe(tmp_path: Path, empty_shared: Path, test_src: str, ci: bool, conftest: str = ""):
    probe = tmp_path / "probe"
    probe.mkdir(exist_ok=True)
    (probe / "test_probe.py").write_text(test_src)
    if conftest:
        (probe / "conftest.py").write_text(conftest)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["GR00T_EXP_SHARED"] = str(empty_shared)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(probe),
            str(probe),
        ],
        cwd=probe,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def empty_shared(tmp_path: Path) -> Path:
    root = tmp_path / "empty_shared"
    root.mkdir()
    return root


@pytest.mark.parametrize(
    ("test_src", "conftest"), [(PLAIN, ""), (MARKER, MARKER_CONFTEST)], ids=["shared_path", "needs_refdata"]
)
def test_missing_fixture_skips_locally_and_fails_under_ci(tmp_path, empty_shared, test_src, conftest):
    wanted = empty_shared / "refdata" / "gr00t_n15" / "tiny" / "model.safetensors"

    local = _run_probe(tmp_path, empty_shared, test_src, ci=False, conftest=conftest)
    out = local.stdout + local.stderr
    assert local.returncode == 0, out
    assert "1 skipped" in out and "passed" not in out and "failed" not in out, out
    assert str(wanted) in out, out  # the skip names the path it looked for

    ci = _run_probe(tmp_path, empty_shared, test_src, ci=True, conftest=conftest)
    out = ci.stdout + ci.stderr
    assert ci.returncode == 1, out
    assert "skipped" not in out, out
    assert ("1 failed" in out) or ("1 error" in out), out
    assert str(wanted) in out, out


def test_default_root_is_shared_beside_the_repository(monkeypatch):
    monkeypatch.delenv("GR00T_EXP_SHARED", raising=False)
    assert (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "tests" / "fixtures.py").is_file()
    assert shared_root() == REPO_ROOT.parent / "shared"


def test_environment_variable_sets_the_root(monkeypatch, tmp_path):
    (tmp_path / "datasets" / "x").mkdir(parents=True)
    monkeypatch.setenv("GR00T_EXP_SHARED", str(tmp_path))
    assert shared_root() == tmp_path
    assert shared_path("datasets", "x") == tmp_path / "datasets" / "x"
