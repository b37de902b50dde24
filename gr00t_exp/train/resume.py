"""`trainer.resume=<path|auto>`: find the checkpoint to resume from.

`auto` takes the latest *complete* checkpoint (the highest `step=` in its name, a readable zip
archive) under `trainer.resume_dir` or, when that is null, under this run's output directory.
Partial files (`.<name>.tmp-*` left by a killed writer) never match.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

from gr00t_exp.train.checkpoint import CKPT_SUFFIX

log = logging.getLogger(__name__)

_STEP = re.compile(r"step=(\d+)")


class ResumeError(ValueError):
    pass


def checkpoint_step(path: Path) -> int | None:
    m = _STEP.search(path.name)
    return int(m.group(1)) if m else None


def is_complete(path: Path) -> bool:
    """A torch zip checkpoint whose central directory is intact (a truncated file fails this)."""
    if path.name.startswith(".") or path.suffix != CKPT_SUFFIX or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("data.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def find_latest(directory: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under `directory` (searched recursively)."""
    directory = Path(directory)
    if not directory.exists():
        return None
    best: tuple[int, float, Path] | None = None
    for p in directory.rglob(f"*{CKPT_SUFFIX}"):
        step = checkpoint_step(p)
        if step is None or not is_complete(p):
            continue
        key = (step, p.stat().st_mtime, p)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def resolve_resume(resume: str | None, run_dir: str | Path, resume_dir: str | None = None) -> Path | None:
    """The checkpoint file to resume from, None to start fresh; raises ResumeError on a bad path."""
    if resume in (None, "", "null", "none", "None"):
        return None
    if resume == "auto":
        where = Path(resume_dir) if resume_dir else Path(run_dir)
        found = find_latest(where)
        if found is None:
            log.info("trainer.resume=auto: no complete checkpoint under %s, starting from scratch", where)
        else:
            log.info("trainer.resume=auto: resuming from %s", found)
        return found
    path = Path(resume)
    if path.is_dir():
        found = find_latest(path)
        if found is None:
            raise ResumeError(
                f"trainer.resume={resume}: the directory holds no complete step=*.ckpt checkpoint; "
                "point it at a .ckpt file or a run's checkpoints/ directory"
            )
        return found
    if not path.exists():
        raise ResumeError(
            f"trainer.resume={resume}: no such file; give a .ckpt path, a checkpoints directory or 'auto'"
        )
    if not is_complete(path):
        raise ResumeError(f"trainer.resume={resume}: the file is not a complete Lightning checkpoint")
    return path
