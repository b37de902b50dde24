"""Per-step relative-action statistics of a dataset, as GR00T N1.6's statistics.json holds them.

For a RELATIVE action group, N1.6 normalises a[t + k] - s[t] (the action k steps ahead minus the
last observed state of the same group) with statistics of shape (len(action_indices), D): one row
per chunk step, because the spread grows with k. (`data/stats.py`'s relative_stats.json is the
per-row a[t] - s[t], i.e. step 0 only, so it cannot stand in for these.) Every row of every
episode is a sample start; steps past the episode end repeat its last action, as the dataset does.
Quantiles are exact up to `max_rows` samples, then taken from a seeded subsample.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gr00t_exp.data.meta import DatasetMeta
from gr00t_exp.data.stats import STAT_KEYS, _fingerprint, atomic_write_json
from gr00t_exp.embodiment import EmbodimentLayout

log = logging.getLogger(__name__)

MAX_ROWS = 200_000


class RelativeStatsError(KeyError, ValueError):
    """A relative action key whose statistics cannot be formed from the dataset."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def check_relative_keys(layout: EmbodimentLayout, relative_keys: Sequence[str], source: str) -> None:
    """Each relative key must be an action key with a same-named state key of the same width."""
    actions = {s.key: s for s in layout.action}
    states = {s.key: s for s in layout.state}
    for key in relative_keys:
        if key not in actions:
            raise RelativeStatsError(
                f"embodiment.relative_action_keys: {key!r} is not an action key of {layout.name} "
                f"(have {sorted(actions)}); list bare action keys, e.g. left_arm"
            )
        s = states.get(key)
        if s is None or s.width != actions[key].width:
            have = f"state.{key} has width {s.width}" if s is not None else f"there is no state.{key}"
            raise RelativeStatsError(
                f"{source}: no relative statistics for action.{key}: a RELATIVE action is taken against "
                f"the last observed state of the same key, but {have} (action.{key} has width "
                f"{actions[key].width}). Fix: add a state key {key} of the same width to the embodiment, "
                f"or drop {key} from embodiment.relative_action_keys (it is then predicted absolute)"
            )


def _summary(x: np.ndarray) -> dict[str, list]:
    """x (N, T, D) -> {stat: (T, D) nested lists}."""
    return {
        "mean": x.mean(0).tolist(),
        "std": x.std(0).tolist(),
        "min": x.min(0).tolist(),
        "max": x.max(0).tolist(),
        "q01": np.quantile(x, 0.01, axis=0).tolist(),
        "q99": np.quantile(x, 0.99, axis=0).tolist(),
    }


def compute_relative_stats(
    meta: DatasetMeta,
    layout: EmbodimentLayout,
    relative_keys: Sequence[str],
    *,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> dict[str, dict[str, list]]:
    """{key: {stat: (len(action_indices), D)}} for each relative key over the whole dataset."""
    check_relative_keys(layout, relative_keys, str(meta.root))
    if not relative_keys:
        return {}
    steps = np.asarray(layout.action_indices, np.int64)
    last_obs = int(max(layout.observation_indices))
    state = {s.key: s for s in layout.state}
    action = {s.key: s for s in layout.action}
    cols = sorted({state[k].column for k in relative_keys} | {action[k].column for k in relative_keys})
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in relative_keys}
    for ep in meta.episodes:
        data = meta.read_episode(ep.index, cols)
        for k in relative_keys:
            s_arr = np.asarray(data[state[k].column], np.float64)
            a_arr = np.asarray(data[action[k].column], np.float64)
            s_arr = (s_arr[:, None] if s_arr.ndim == 1 else s_arr)[:, state[k].column_slice]
            a_arr = (a_arr[:, None] if a_arr.ndim == 1 else a_arr)[:, action[k].column_slice]
            n = len(a_arr)
            base = np.arange(n)
            s_last = s_arr[np.clip(base + last_obs, 0, n - 1)]
            future = a_arr[np.clip(base[:, None] + steps[None, :], 0, n - 1)]  # (n, T, D)
            chunks[k].append(future - s_last[:, None, :])
    rng = np.random.default_rng(seed)
    out = {}
    for k, parts in chunks.items():
        x = np.concatenate(parts, axis=0)
        if len(x) > max_rows:
            x = x[np.sort(rng.choice(len(x), max_rows, replace=False))]
        out[k] = _summary(x)
    return out


def load_or_compute_relative_stats(
    meta: DatasetMeta,
    layout: EmbodimentLayout,
    relative_keys: Sequence[str],
    cache_dir: str | Path | None = None,
) -> dict[str, dict[str, list]]:
    """`compute_relative_stats`, cached under cache_dir/stats (the dataset is never written)."""
    check_relative_keys(layout, relative_keys, str(meta.root))
    if not relative_keys:
        return {}
    # The cache key covers what the numbers depend on: files, keys, chunk steps.
    what = f"{sorted(relative_keys)}:{list(layout.action_indices)}:{list(layout.observation_indices)}"
    tag = f"{_fingerprint(meta)}-{hashlib.sha256(what.encode()).hexdigest()[:8]}"
    cache_file = Path(cache_dir) / "stats" / f"{meta.root.name}-relative-{tag}.json" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text())
            if set(cached) == set(relative_keys) and all(set(STAT_KEYS) <= set(v) for v in cached.values()):
                return cached
        except json.JSONDecodeError:
            pass
    log.info("computing per-step relative-action statistics of %s for %s", meta.root, list(relative_keys))
    stats = compute_relative_stats(meta, layout, relative_keys)
    if cache_file is not None:
        atomic_write_json(cache_file, stats)
    return stats
