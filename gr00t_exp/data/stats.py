"""Dataset statistics (`meta/stats.json` layout) streamed episode by episode with pyarrow.

Per non-string parquet column and per dimension: mean, std, min, max, q01, q99.
mean/std/min/max are exact (float64 running sums). Quantiles are exact while a column has at most
`max_quantile_rows` rows (default 500k: every dataset this project has seen); above that they are
taken from a uniform, seeded subsample of that many rows (a documented approximation, error well
below the data's own noise for 1e5+ rows).

Relative-action stats: for every key in both modality.state and modality.action (same width),
statistics of `action[key] - state[key]` at the same step, keyed `action.<key>`.

`mode=stats` writes stats.json + relative_stats.json into the run's output dir, or atomically into
the dataset's meta/ with `data.write_in_place=true`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from gr00t_exp.data.meta import DatasetMeta, table_to_numpy
from gr00t_exp.embodiment import prefixed

log = logging.getLogger(__name__)

STAT_KEYS = ("mean", "std", "min", "max", "q01", "q99")


class _Accumulator:
    """Running per-dim statistics of one column, with a bounded sample for quantiles."""

    def __init__(self, max_rows: int, rng: np.random.Generator):
        self.n = 0
        self.sum: Optional[np.ndarray] = None
        self.sumsq: Optional[np.ndarray] = None
        self.min: Optional[np.ndarray] = None
        self.max: Optional[np.ndarray] = None
        self.parts: list[np.ndarray] = []
        self.kept = 0
        self.max_rows = max_rows
        self.rng = rng

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if len(x) == 0:
            return
        if self.sum is None:
            self.sum = x.sum(0)
            self.sumsq = (x * x).sum(0)
            self.min = x.min(0)
            self.max = x.max(0)
        else:
            self.sum += x.sum(0)
            self.sumsq += (x * x).sum(0)
            self.min = np.minimum(self.min, x.min(0))
            self.max = np.maximum(self.max, x.max(0))
        self.n += len(x)
        self.parts.append(x)
        self.kept += len(x)
        if self.kept > 2 * self.max_rows:  # keep memory bounded: subsample what we hold
            allx = np.concatenate(self.parts)
            idx = np.sort(self.rng.choice(len(allx), self.max_rows, replace=False))
            self.parts, self.kept = [allx[idx]], self.max_rows

    def result(self) -> dict[str, list[float]]:
        assert self.sum is not None
        mean = self.sum / self.n
        var = np.maximum(self.sumsq / self.n - mean * mean, 0.0)
        sample = np.concatenate(self.parts)
        if len(sample) > self.max_rows:
            sample = sample[np.sort(self.rng.choice(len(sample), self.max_rows, replace=False))]
        q01, q99 = np.quantile(sample, [0.01, 0.99], axis=0)
        return {
            "mean": mean.tolist(),
            "std": np.sqrt(var).tolist(),
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "q01": q01.tolist(),
            "q99": q99.tolist(),
        }


def _numeric_columns(table: pa.Table) -> list[str]:
    out = []
    for f in table.schema:
        t = f.type
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            t = t.value_type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            out.append(f.name)
    return out


def relative_pairs(meta: DatasetMeta) -> dict[str, tuple[str, slice, str, slice]]:
    """key -> (state column, state slice, action column, action slice) for keys in both groups."""
    mod = meta.modality
    pairs = {}
    for key, a in mod.action.items():
        s = mod.state.get(key)
        if s is None or s.width != a.width:
            continue
        pairs[key] = (
            mod.column("state", key),
            slice(s.start, s.end),
            mod.column("action", key),
            slice(a.start, a.end),
        )
    return pairs


def compute_all_stats(
    meta: DatasetMeta, *, max_quantile_rows: int = 500_000, seed: int = 0
) -> tuple[dict[str, dict], dict[str, dict]]:
    """(stats.json dict, relative_stats dict) over every episode of the dataset."""
    rng = np.random.default_rng(seed)
    acc: dict[str, _Accumulator] = {}
    rel_acc: dict[str, _Accumulator] = {}
    pairs = relative_pairs(meta)
    for ep in meta.episodes:
        table = meta.read_table(ep.index)
        cols = table_to_numpy(table.select(_numeric_columns(table)))
        for name, arr in cols.items():
            acc.setdefault(name, _Accumulator(max_quantile_rows, rng)).add(arr)
        for key, (scol, ssl, acol, asl) in pairs.items():
            if scol in cols and acol in cols and cols[scol].ndim == 2 and cols[acol].ndim == 2:
                rel = cols[acol][:, asl].astype(np.float64) - cols[scol][:, ssl].astype(np.float64)
                rel_acc.setdefault(prefixed("action", key), _Accumulator(max_quantile_rows, rng)).add(rel)
    stats = {k: a.result() for k, a in acc.items() if a.n}
    rel = {k: a.result() for k, a in rel_acc.items() if a.n}
    return stats, rel


def compute_stats(meta: DatasetMeta) -> dict[str, dict]:
    """stats.json layout: {column: {mean, std, min, max, q01, q99: list per dim}}."""
    return compute_all_stats(meta)[0]


def stats_valid(meta: DatasetMeta, stats: Any) -> bool:
    """True if `stats` has every STAT_KEY, with the right width, for each state/action column in use."""
    if not isinstance(stats, dict):
        return False
    from gr00t_exp.data.modality import feature_width

    cols = {meta.modality.column(g, k) for g in ("state", "action") for k in getattr(meta.modality, g)}
    for col in cols:
        entry = stats.get(col)
        if not isinstance(entry, dict) or any(k not in entry for k in STAT_KEYS):
            return False
        width = feature_width(meta.info, col)
        for k in STAT_KEYS:
            v = entry[k]
            if not isinstance(v, list) or (width is not None and len(v) != width):
                return False
    return True


def _fingerprint(meta: DatasetMeta) -> str:
    h = hashlib.sha256(str(meta.root).encode())
    for ep in meta.episodes:
        p = meta.parquet_path(ep.index)
        st = p.stat()
        h.update(f"{ep.index}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def load_or_compute_stats(meta: DatasetMeta, cache_dir: str | Path | None = None) -> dict[str, dict]:
    """The dataset's meta/stats.json if valid, else computed once and cached under cache_dir.

    The dataset itself is never written (upstream N1.5 overwrites stats.json; we do not).
    """
    if stats_valid(meta, meta.stats):
        return meta.stats  # type: ignore[return-value]
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / "stats" / f"{meta.root.name}-{_fingerprint(meta)}.json"
        if cache_file.exists():
            try:
                cached = json.loads(cache_file.read_text())
                if stats_valid(meta, cached):
                    return cached
            except json.JSONDecodeError:
                pass
    log.info(
        "computing statistics of %s (meta/stats.json %s)", meta.root, "invalid" if meta.stats else "missing"
    )
    stats = compute_stats(meta)
    if cache_file is not None:
        atomic_write_json(cache_file, stats)
    return stats


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON via a temp file in the same dir + os.replace (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
