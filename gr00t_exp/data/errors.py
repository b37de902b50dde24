"""Dataset problems that users can hit, each naming the file, the key and the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Issue:
    """One finding about a dataset (an error stops loading; a warning is reported)."""

    severity: str  # "error" | "warning"
    check: str  # short id of the check, e.g. "modality.overlap"
    file: str  # file (relative to the dataset root where possible) the problem is in
    key: str  # key / column / field concerned ("" if none)
    message: str
    fix: str

    def __str__(self) -> str:
        key = f" [{self.key}]" if self.key else ""
        return f"{self.file}{key}: {self.message}. Fix: {self.fix}"

    def to_dict(self) -> dict:
        return asdict(self)


class DatasetError(ValueError):
    """A dataset cannot be used as it is. `str(err)` names file, key and fix for every problem."""

    def __init__(self, issues: list[Issue] | Issue | str):
        if isinstance(issues, str):
            # Re-raised from a DataLoader worker: torch rebuilds the exception from its formatted
            # traceback; keep only the original message (after the last "DatasetError: ").
            self.issues = []
            super().__init__(issues.rpartition("DatasetError: ")[2] or issues)
            return
        self.issues = [issues] if isinstance(issues, Issue) else list(issues)
        if len(self.issues) == 1:
            text = str(self.issues[0])
        else:
            text = f"{len(self.issues)} problems:\n" + "\n".join(f"  - {i}" for i in self.issues)
        super().__init__(text)


def error(check: str, file: str | Path, key: str, message: str, fix: str) -> Issue:
    return Issue("error", check, str(file), key, message, fix)


def warning(check: str, file: str | Path, key: str, message: str, fix: str) -> Issue:
    return Issue("warning", check, str(file), key, message, fix)
