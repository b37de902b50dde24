"""`mode=inspect`: what a dataset contains, one sample's keys/shapes/dtypes, and PNG plots.

Writes into the run dir: `frames_<camera>.png` (a grid of frames of episode tools.episode per
camera), `state_action_ep<N>.png` (state and action curves per modality key), `inspect.json`.
If the data-pipeline dataset (gr00t_exp/data/dataset.py) is importable and the embodiment's keys
match the dataset, a transformed sample is shown as well.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import av
import numpy as np

from gr00t_exp.data.config import DataConfig
from gr00t_exp.data.errors import DatasetError, error
from gr00t_exp.data.meta import DatasetMeta, load_meta
from gr00t_exp.data.tools.common import tool_dataset_path, tool_output_dir
from gr00t_exp.data.tools.validate import chosen_embodiment
from gr00t_exp.embodiment import prefixed

log = logging.getLogger(__name__)


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"{x.dtype} {tuple(x.shape)}"
    if hasattr(x, "shape") and hasattr(x, "dtype"):  # torch tensors
        return f"{x.dtype} {tuple(x.shape)}"
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__}[{len(x)}] {x[:1]!r}"[:120]
    return f"{type(x).__name__} {x!r}"[:120]


def read_frames(path: Path, count: int, span: Optional[tuple[float, float]] = None) -> list[np.ndarray]:
    """`count` frames spread evenly over the video, or over its [from_s, to_s) span (a v3.0 episode
    inside a shared file), RGB uint8, decoded sequentially."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        tb = float(s.time_base)
        lo, hi = span if span is not None else (-np.inf, np.inf)
        pts = sorted(p.pts * tb for p in c.demux(s) if p.size and p.pts is not None)
        times = [t for t in pts if lo - 1e-4 <= t < hi - 1e-4]
        if not times:
            return []
        want = {times[i] for i in np.linspace(0, len(times) - 1, count).astype(int)}
        if span is not None:
            c.seek(int(times[0] / tb), stream=s, backward=True, any_frame=False)
        else:
            c.seek(0, stream=s)
        out = []
        for f in c.decode(s):
            t = f.pts * tb if f.pts is not None else None
            if t is not None and any(abs(t - w) < 1e-6 for w in want):
                out.append(f.to_ndarray(format="rgb24"))
            if len(out) == len(want) or (t is not None and t > times[-1] + 1e-6):
                break
    return out


def raw_sample(meta: DatasetMeta, episode: int, step: int = 0) -> dict[str, Any]:
    """One raw sample per modality key (state/action slices, first video frame, language text)."""
    data = meta.read_episode(episode)
    mod = meta.modality
    step = min(step, len(next(iter(data.values()))) - 1)
    sample: dict[str, Any] = {}
    for group in ("state", "action"):
        for key, spec in getattr(mod, group).items():
            col = data.get(mod.column(group, key))
            if col is not None:
                sample[prefixed(group, key)] = np.asarray(col[step : step + 1, spec.start : spec.end])
    for key, v in mod.video.items():
        path = meta.video_path(episode, v.original_key)
        if path.exists():
            frames = read_frames(path, 1, meta.video_span(episode, v.original_key))
            if frames:
                sample[prefixed("video", key)] = frames[0][None]
    for key in mod.annotation:
        col = data.get(mod.column("annotation", key))
        if col is not None:
            sample[prefixed("annotation", key)] = [meta.tasks.get(int(col[step]), f"<task {int(col[step])}>")]
    return sample


def transformed_sample(
    meta: DatasetMeta, embodiment: Any, episode: int = 0, data_cfg: Any = None
) -> tuple[dict[str, Any] | None, str]:
    """Step 0 of `episode` as the model sees it (the same episode as the raw sample), built by the
    data factory from `data_cfg` (the run's `data` config; None = its defaults), as training does."""
    try:  # the dataset pulls in torch: the raw inspection works without it
        from gr00t_exp.data.factory import make_dataset
        from gr00t_exp.data.stats import load_or_compute_stats
    except ImportError as e:
        return None, f"data pipeline not available ({e})"
    try:
        ds = make_dataset(
            data_cfg if data_cfg is not None else DataConfig(),
            meta,
            embodiment,
            load_or_compute_stats(meta),
            episodes=[episode],
            training=False,
            frame_cache=None,
        )
        return ds[0], "ok"
    except Exception as e:  # show why, but the raw inspection is still useful
        return None, f"{type(e).__name__}: {e}"


def plot_frames(meta: DatasetMeta, episode: int, out_dir: Path, count: int = 8) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key, v in meta.modality.video.items():
        path = meta.video_path(episode, v.original_key)
        if not path.exists():
            continue
        frames = read_frames(path, count, meta.video_span(episode, v.original_key))
        if not frames:
            continue
        cols = min(4, len(frames))
        rows = (len(frames) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, f in zip(axes.flat, frames, strict=False):
            ax.imshow(f)
        fig.suptitle(f"{key} ({v.original_key}), episode {episode}")
        dest = out_dir / f"frames_{key}.png"
        fig.savefig(dest, dpi=80, bbox_inches="tight")
        plt.close(fig)
        written.append(dest)
    return written


def plot_curves(meta: DatasetMeta, episode: int, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = meta.read_episode(episode)
    mod = meta.modality
    keys = [(g, k) for g in ("state", "action") for k in getattr(mod, g)]
    names = sorted({k for _, k in keys})
    fig, axes = plt.subplots(
        len(names), 1, figsize=(10, 2.2 * max(len(names), 1)), squeeze=False, sharex=True
    )
    t = np.arange(len(next(iter(data.values()))))
    for ax, name in zip(axes[:, 0], names, strict=True):
        for group, style in (("state", "-"), ("action", "--")):
            spec = getattr(mod, group).get(name)
            col = data.get(mod.column(group, name)) if spec else None
            if spec is None or col is None:
                continue
            for d in range(spec.start, spec.end):
                ax.plot(
                    t,
                    col[:, d],
                    style,
                    lw=1,
                    label=f"{group}[{d - spec.start}]" if d - spec.start < 4 else None,
                )
        ax.set_ylabel(name)
        ax.legend(loc="upper right", fontsize=6, ncol=4)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(f"episode {episode}: state (solid) and action (dashed)")
    dest = out_dir / f"state_action_ep{episode}.png"
    fig.savefig(dest, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return dest


def inspect_dataset(
    root: str | Path, out_dir: Path, episode: int = 0, embodiment: Any = None, data_cfg: Any = None
) -> dict[str, Any]:
    meta = load_meta(root, embodiment, check_embodiment=False)
    if episode not in meta.episode_indices:
        raise DatasetError(
            error(
                "inspect.episode",
                "meta/episodes.jsonl",
                f"episode {episode}",
                "no such episode",
                f"use tools.episode in {meta.episode_indices[:10]}",
            )
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = raw_sample(meta, episode)
    result: dict[str, Any] = {
        "dataset": str(meta.root),
        "version": meta.version,
        "fps": meta.fps,
        "episodes": len(meta.episodes),
        "frames": meta.total_frames,
        "tasks": meta.tasks,
        "modality_source": meta.modality_source,
        "columns": meta.columns,
        "episode": episode,
        "raw_sample": {k: _describe(v) for k, v in raw.items()},
    }
    if embodiment is not None and getattr(embodiment, "state_keys", None):
        sample, status = transformed_sample(meta, embodiment, episode, data_cfg)
        result["transformed_sample_status"] = status
        if sample is not None:
            result["transformed_sample"] = {k: _describe(v) for k, v in sample.items()}
    result["plots"] = [str(p) for p in plot_frames(meta, episode, out_dir)] + [
        str(plot_curves(meta, episode, out_dir))
    ]
    (out_dir / "inspect.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def run(cfg) -> int:
    try:
        res = inspect_dataset(
            tool_dataset_path(cfg),
            tool_output_dir(cfg),
            int(cfg.tools.episode),
            chosen_embodiment(cfg),
            data_cfg=cfg.data,
        )
    except (DatasetError, ValueError) as e:
        print(f"error: {e}")
        return 1
    print(
        f"dataset {res['dataset']} ({res['version']}): {res['episodes']} episodes, {res['frames']} frames at {res['fps']:g} fps"
    )
    print(f"tasks: {len(res['tasks'])}; modality from {res['modality_source']}")
    print(f"raw sample (episode {res['episode']}, step 0):")
    for k, v in res["raw_sample"].items():
        print(f"  {k:45s} {v}")
    if "transformed_sample" in res:
        print("transformed sample:")
        for k, v in res["transformed_sample"].items():
            print(f"  {k:45s} {v}")
    elif "transformed_sample_status" in res:
        print(f"transformed sample: not shown ({res['transformed_sample_status']})")
    print("plots:\n  " + "\n  ".join(res["plots"]))
    return 0
