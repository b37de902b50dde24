"""docs/migration.md cannot rot: every `python run.py ...` command on the page composes with the
project's config (unknown keys, wrong types and missing groups fail at composition)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gr00t_exp.config.compose import compose_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "migration.md"
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def run_py_commands(text: str) -> list[list[str]]:
    """The override lists of each `python run.py` command in the page's fenced code blocks."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)  # line continuations
        for line in joined.splitlines():
            start = line.find("python run.py ")
            # only commands, possibly after VAR=value prefixes (a token generated inline)
            if start >= 0 and (start == 0 or _ENV.match(line.strip())):
                commands.append(shlex.split(line[start:])[2:])
    return commands


COMMANDS = run_py_commands(DOC.read_text())


def test_the_page_maps_every_upstream_script():
    text = DOC.read_text()
    for script in ("inference_service.py", "run_gr00t_server.py", "gr00t_finetune.py", "launch_finetune.py",
                   "load_dataset.py", "eval_policy.py", "open_loop_eval.py", "standalone_inference_script.py"):  # fmt: skip
        assert script in text, script
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("overrides", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_command_composes(overrides):
    cfg = compose_config(overrides)
    for o in overrides:
        key, _, value = o.partition("=")
        if "." in key and not value.startswith(("[", "{")):
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert str(node).lower() == value.lower(), o
