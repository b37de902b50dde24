"""Dependency direction between the subpackages: each is imported, every module of it, in a fresh
interpreter, and the gr00t_exp modules that came along must all be allowed.

Layers, bottom up: the client distribution (nothing of gr00t_exp); data, model, embodiment; serve
and eval (never the robot, training or tools above them); train (evaluates after fit); robot
(a consumer of served policies); export; bench, the composed schema (config.schema, config.compose)
and cli at the top.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures import REPO_ROOT

# The composed schema (and its composer) sits at the top; small helpers in gr00t_exp.config
# (e.g. config.redact) may be used from anywhere.
TOP = ("config.schema", "config.compose", "cli")
ABOVE_DATA = ("train", "serve", "robot", "eval", "bench", "export", *TOP)
# package -> gr00t_exp subpackages it must not load (directly or through another module).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "gr00t_exp.data": ABOVE_DATA,
    "gr00t_exp.model": ABOVE_DATA,
    "gr00t_exp.embodiment": ABOVE_DATA,
    "gr00t_exp.serve": ("robot", "train", "eval", "bench", "export", *TOP),
    "gr00t_exp.eval": ("train", "serve", "robot", "bench", "export", *TOP),
    "gr00t_exp.train": ("serve", "robot", "bench", "export", *TOP),
    "gr00t_exp.robot": ("train", "eval", "bench", "export", *TOP),
    "gr00t_exp.export": ("train", "serve", "robot", "eval", "bench", *TOP),
}

PROBE = """
import importlib, json, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m == "gr00t_exp" or m.startswith("gr00t_exp."))))
"""


@pytest.fixture(scope="module")
def loaded_by() -> dict[str, list[str]]:
    """package -> the gr00t_exp modules importing all of it loads; the interpreters run at once
    (each imports torch and all: concurrently they take about half the time)."""
    packages = [*sorted(FORBIDDEN), "gr00t_exp_client"]
    procs = {
        p: subprocess.Popen(
            [sys.executable, "-c", PROBE, p],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in packages
    }
    out: dict[str, list[str]] = {}
    for package, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"importing every module of {package} failed:\n{stderr[-3000:]}"
        out[package] = json.loads(stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow  # one interpreter (torch and all) per subpackage
@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_subpackage_imports_only_downward(package, loaded_by):
    bad = sorted(
        m
        for m in loaded_by[package]
        for up in FORBIDDEN[package]
        if m == f"gr00t_exp.{up}" or m.startswith(f"gr00t_exp.{up}.")
    )
    assert not bad, f"{package} loads {bad}: move the shared piece down a layer (or the caller up)"


def test_the_client_distribution_imports_nothing_of_gr00t_exp(loaded_by):
    assert loaded_by["gr00t_exp_client"] == []
