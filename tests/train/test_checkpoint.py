"""Checkpoints are atomic: a crash mid-write never leaves a file that resume would pick up."""

from __future__ import annotations

import os

import pytest
import torch

from gr00t_exp.train import checkpoint as ck
from gr00t_exp.train.resume import ResumeError, find_latest, is_complete, resolve_resume


def test_atomic_save_roundtrip(tmp_path):
    p = ck.atomic_torch_save({"a": torch.arange(3)}, tmp_path / "ckpts" / "step=0000010.ckpt")
    assert torch.equal(torch.load(p)["a"], torch.arange(3))
    assert [f.name for f in p.parent.iterdir()] == ["step=0000010.ckpt"]


def test_crash_mid_write_leaves_previous_checkpoint_as_latest(tmp_path, monkeypatch):
    good = ck.atomic_torch_save({"step": 10}, tmp_path / "step=0000010.ckpt")
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.flush()
        f.truncate(f.tell() // 2)  # half the bytes hit the disk, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        ck.atomic_torch_save({"step": 20, "w": torch.zeros(1000)}, tmp_path / "step=0000020.ckpt")
    assert not (tmp_path / "step=0000020.ckpt").exists()
    assert find_latest(tmp_path) == good


def test_hard_killed_writer_leftovers_and_truncated_files_are_ignored(tmp_path):
    good = ck.atomic_torch_save({"step": 10}, tmp_path / "step=0000010.ckpt")
    # What a SIGKILL during an atomic write leaves behind: a hidden temp file.
    (tmp_path / ".step=0000030.ckpt.tmp-abc").write_bytes(b"PK\x03\x04partial")
    # What a non-atomic writer could leave: a truncated file under the final name.
    blob = (tmp_path / "step=0000010.ckpt").read_bytes()
    (tmp_path / "step=0000020.ckpt").write_bytes(blob[: len(blob) // 2])
    assert not is_complete(tmp_path / "step=0000020.ckpt")
    assert find_latest(tmp_path) == good


def test_resolve_resume_modes(tmp_path):
    assert resolve_resume(None, tmp_path) is None
    assert resolve_resume("auto", tmp_path) is None  # nothing yet: start fresh
    a = ck.atomic_torch_save({}, tmp_path / "checkpoints" / "step=0000005.ckpt")
    b = ck.atomic_torch_save({}, tmp_path / "checkpoints" / "step=0000015.ckpt")
    os.utime(a)  # newer mtime must not beat a higher step
    assert resolve_resume("auto", tmp_path) == b
    assert resolve_resume(str(tmp_path / "checkpoints"), "/nowhere") == b
    assert resolve_resume(str(a), "/nowhere") == a
    with pytest.raises(ResumeError, match="no such file"):
        resolve_resume(str(tmp_path / "nope.ckpt"), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResumeError, match="no complete"):
        resolve_resume(str(tmp_path / "empty"), tmp_path)
