"""Atomic Lightning checkpoints and the GR00T hub-layout export.

A checkpoint file appears under its final name only once it is complete: bytes go to a hidden
temporary file in the same directory, are fsync'ed, then `os.replace`d into place (atomic on POSIX).
An interrupted write leaves only a `.<name>.tmp-<pid>-*` file, which resume never picks up and the
next save in that directory deletes once its writer is gone (`remove_stale_temp`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from gr00t_exp.config.redact import redact

log = logging.getLogger(__name__)

CKPT_SUFFIX = ".ckpt"
TMP_MARK = ".tmp-"  # temporary files: .<name>.tmp-<pid>-<random>


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp(directory: str | Path) -> list[Path]:
    """Delete the temporary files that killed writes left in `directory` (their writer is gone).

    A hard kill (SIGKILL, OOM, pre-emption) cannot run cleanup, and each leftover is as large as a
    checkpoint. Files of a live writer (another rank, a concurrent job) are kept."""
    removed = []
    d = Path(directory)
    if not d.is_dir():
        return removed
    for p in d.glob(f".*{TMP_MARK}*"):
        pid_text = p.name.rpartition(TMP_MARK)[2].split("-")[0]
        pid = int(pid_text) if pid_text.isdigit() else None
        if pid is not None and (pid == os.getpid() or _pid_alive(pid)):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            continue
    if removed:
        log.info("removed %d temporary file(s) left by interrupted checkpoint writes in %s", len(removed), d)
    return removed


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` to `path` so that `path` is either absent/old or complete, never partial."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TMP_MARK}{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A clean failure (exception, Ctrl-C) removes its temporary file; a hard kill leaves a
        # hidden `.tmp-` file, which is harmless.
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO plugin writing local files with `atomic_torch_save`."""

    def __init__(self) -> None:
        super().__init__()
        self._swept: set[Path] = set()

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # remote file systems: Lightning's fsspec transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        parent = Path(path).parent
        if parent not in self._swept:  # once per directory: leftovers of an earlier, killed run
            remove_stale_temp(parent)
            self._swept.add(parent)
        atomic_torch_save(checkpoint, path)


def dataset_identity(roots: list[str | Path]) -> list[dict]:
    """Path and a sha256 over each dataset's meta/ files (names + bytes): what the model was trained on."""
    out = []
    for root in roots:
        root = Path(root)
        h = hashlib.sha256()
        meta = root / "meta"
        files = sorted(p for p in meta.rglob("*") if p.is_file()) if meta.is_dir() else []
        for p in files:
            h.update(str(p.relative_to(meta)).encode())
            h.update(p.read_bytes())
        out.append({"path": str(root.resolve()), "meta_sha256": h.hexdigest(), "meta_files": len(files)})
    return out


def export_hub(
    model: torch.nn.Module,
    out_dir: str | Path,
    metadata: dict,
    cfg: DictConfig | None = None,
    extra: dict | None = None,
    processor_files: dict | None = None,
) -> Path:
    """Write `model` in the GR00T hub layout through the model package's `save_pretrained`.

    `metadata` is upstream's experiment_cfg/metadata.json content ({embodiment_tag: {...}}). The
    composed config and `extra` (dataset identity, step, metric) go into each tag entry under
    "gr00t_exp", and the config also as experiment_cfg/config.yaml.

    GR00T N1.6: `processor_files` ({processor_config.json, statistics.json, embodiment_id.json:
    content}) go beside the weights, where N1.6 loaders read the normalisation; metadata.json is
    still written (N1.6 loaders ignore experiment_cfg/), so serving can check the training
    embodiment and the observation layout as for N1.5.
    """
    from gr00t_exp.model import save_pretrained

    metadata = json.loads(json.dumps(metadata))  # a deep, JSON-clean copy
    info: dict[str, Any] = dict(extra or {})
    if cfg is not None:
        # Resolved, then secrets (api tokens) redacted: an export must never carry credentials.
        info["config"] = redact(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    for entry in metadata.values():
        if isinstance(entry, dict):
            entry["gr00t_exp"] = info
    if processor_files is not None:
        out = Path(save_pretrained(model, out_dir, metadata=processor_files))
        (out / "experiment_cfg").mkdir(parents=True, exist_ok=True)
        tmp_meta = out / "experiment_cfg" / ".metadata.json.tmp"
        tmp_meta.write_text(json.dumps(metadata, indent=2) + "\n")
        os.replace(tmp_meta, out / "experiment_cfg" / "metadata.json")
    else:
        out = Path(save_pretrained(model, out_dir, metadata=metadata))
    if cfg is not None:
        text = OmegaConf.to_yaml(OmegaConf.create(info["config"]))
        (out / "experiment_cfg").mkdir(parents=True, exist_ok=True)
        tmp = out / "experiment_cfg" / ".config.yaml.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / "experiment_cfg" / "config.yaml")
    return out
