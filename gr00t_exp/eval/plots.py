"""Ground truth vs prediction plots, one subplot per action dimension (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The object-oriented API with an Agg canvas: no pyplot, no global backend change (notebooks).
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_episode(
    gt: np.ndarray,
    pred: np.ndarray,
    dim_names: list[str],
    chunk_starts: list[int],
    out_path: str | Path,
    title: str = "",
    baseline: np.ndarray | None = None,
) -> Path:
    d = gt.shape[1]
    ncols = min(4, d)
    nrows = int(np.ceil(d / ncols))
    fig = Figure(figsize=(4 * ncols, 2.2 * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    t = np.arange(gt.shape[0])
    starts = [s for s in chunk_starts if s < len(t)]
    for i in range(nrows * ncols):
        ax = axes[i // ncols][i % ncols]
        if i >= d:
            ax.axis("off")
            continue
        ax.plot(t, gt[:, i], label="ground truth", color="C0", lw=1.2)
        ax.plot(t, pred[:, i], label="prediction", color="C1", lw=1.2)
        if baseline is not None:
            ax.axhline(baseline[i], color="0.5", ls="--", lw=0.8, label="mean baseline")
        ax.plot(starts, pred[starts, i], "o", color="red", ms=2.5, label="inference point")
        ax.set_title(dim_names[i] if i < len(dim_names) else f"dim {i}", fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=80)
    return out_path
