"""mode=stats: stats.json and relative_stats.json of a dataset, in the run dir (or in place)."""

from __future__ import annotations

from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.stats import atomic_write_json, compute_all_stats
from gr00t_exp.data.tools.common import tool_dataset_path, tool_output_dir
from gr00t_exp.data.tools.validate import chosen_embodiment


def run(cfg) -> int:
    """mode=stats: compute stats.json and relative_stats.json of tools.dataset (or data.sources[0])."""
    try:
        # the composed default embodiment says nothing about this dataset: only a chosen one applies
        meta = load_meta(tool_dataset_path(cfg), chosen_embodiment(cfg), check_embodiment=False)
        stats, rel = compute_all_stats(meta)
    except DatasetError as e:
        print(f"error: {e}")
        return 1
    if cfg.data.get("write_in_place", False):
        dest = meta.root / "meta"
    else:
        dest = tool_output_dir(cfg)
    atomic_write_json(dest / "stats.json", stats)
    atomic_write_json(dest / "relative_stats.json", rel)
    frames = meta.total_frames
    print(f"stats of {meta.root} ({len(meta.episodes)} episodes, {frames} frames) -> {dest}/stats.json")
    for col in sorted(stats):
        s = stats[col]
        print(f"  {col:45s} dims={len(s['mean']):3d}  min={min(s['min']):+.4g}  max={max(s['max']):+.4g}")
    print(f"relative-action stats for {len(rel)} key(s) -> {dest}/relative_stats.json")
    return 0
