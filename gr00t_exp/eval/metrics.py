"""Open-loop metrics: MSE / MAE per joint group and overall, the predict-the-mean baseline, and the
discontinuity of predictions at action-chunk boundaries. Pure numpy, in unnormalised units."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _err(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    d = pred.astype(np.float64) - gt.astype(np.float64)
    return {"mse": float(np.mean(d**2)), "mae": float(np.mean(np.abs(d)))}


def chunk_boundary_jumps(seq: np.ndarray, chunk_starts: list[int]) -> float:
    """Mean |a[b] - a[b-1]| over the boundaries b (chunk starts after the first) and dims."""
    bounds = [b for b in chunk_starts if 0 < b < len(seq)]
    if not bounds:
        return float("nan")
    return float(np.mean(np.abs(seq[bounds] - seq[[b - 1 for b in bounds]])))


def within_chunk_jumps(seq: np.ndarray, chunk_starts: list[int]) -> float:
    """Mean |a[t] - a[t-1]| for consecutive steps inside one chunk (the smoothness reference)."""
    starts = set(chunk_starts)
    idx = [t for t in range(1, len(seq)) if t not in starts]
    if not idx:
        return float("nan")
    return float(np.mean(np.abs(seq[idx] - seq[[t - 1 for t in idx]])))


def episode_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    groups: Mapping[str, slice],
    chunk_starts: list[int],
    baseline: np.ndarray,
) -> dict:
    """Metrics of one episode; `pred`/`gt` (T, D), `baseline` (D,) the training-set mean action."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    base = np.broadcast_to(baseline, gt.shape)
    out: dict = {
        "steps": int(gt.shape[0]),
        "overall": _err(pred, gt),
        "baseline": _err(base, gt),
        "groups": {},
    }
    for name, sl in groups.items():
        out["groups"][name] = {
            "model": _err(pred[:, sl], gt[:, sl]),
            "baseline": _err(base[:, sl], gt[:, sl]),
        }
    out["chunk_boundary"] = {
        "pred_jump": chunk_boundary_jumps(pred, chunk_starts),
        "gt_jump": chunk_boundary_jumps(gt, chunk_starts),
        "pred_within_chunk_jump": within_chunk_jumps(pred, chunk_starts),
    }
    return out


def aggregate(per_episode: Mapping[int, dict]) -> dict:
    """Step-weighted means over episodes (so every evaluated step counts once)."""
    eps = list(per_episode.values())
    if not eps:
        raise ValueError("no episode was evaluated")
    w = np.array([e["steps"] for e in eps], dtype=np.float64)

    def wmean(vals: list[float]) -> float:
        v = np.array(vals, dtype=np.float64)
        ok = ~np.isnan(v)
        return float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else float("nan")

    out: dict = {
        "episodes": len(eps),
        "steps": int(w.sum()),
        "overall": {k: wmean([e["overall"][k] for e in eps]) for k in ("mse", "mae")},
        "baseline": {k: wmean([e["baseline"][k] for e in eps]) for k in ("mse", "mae")},
        "groups": {},
        "chunk_boundary": {k: wmean([e["chunk_boundary"][k] for e in eps]) for k in eps[0]["chunk_boundary"]},
    }
    for g in eps[0]["groups"]:
        out["groups"][g] = {
            who: {k: wmean([e["groups"][g][who][k] for e in eps]) for k in ("mse", "mae")}
            for who in ("model", "baseline")
        }
    b = out["baseline"]["mse"]
    out["mse_vs_baseline"] = out["overall"]["mse"] / b if b > 0 else float("nan")
    return out


def format_table(summary: dict) -> str:
    """A plain-text side-by-side table: model vs predict-the-mean baseline."""
    lines = [f"{'group':<28}{'model MSE':>12}{'mean MSE':>12}{'model MAE':>12}{'mean MAE':>12}"]
    for g, v in summary["groups"].items():
        lines.append(
            f"{g:<28}{v['model']['mse']:>12.5f}{v['baseline']['mse']:>12.5f}"
            f"{v['model']['mae']:>12.5f}{v['baseline']['mae']:>12.5f}"
        )
    o, b = summary["overall"], summary["baseline"]
    lines.append(f"{'overall':<28}{o['mse']:>12.5f}{b['mse']:>12.5f}{o['mae']:>12.5f}{b['mae']:>12.5f}")
    cb = summary["chunk_boundary"]
    lines.append(
        f"chunk-boundary jump: pred {cb['pred_jump']:.5f} | ground truth {cb['gt_jump']:.5f} | "
        f"pred within chunk {cb['pred_within_chunk_jump']:.5f}"
    )
    ratio = summary.get("mse_vs_baseline")
    if ratio is not None and ratio == ratio:
        verdict = "below" if ratio < 1 else "NOT below"
        lines.append(f"model MSE = {ratio:.3f} x the predict-the-mean baseline ({verdict} it)")
    if "normalized_mse" in summary:
        lines.append(
            f"normalised units (as val/open_loop_mse): MSE {summary['normalized_mse']:.5f} over whole chunks"
        )
    return "\n".join(lines)
