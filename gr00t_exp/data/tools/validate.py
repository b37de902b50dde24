"""`mode=validate`: a dataset health report (Markdown + JSON) and exit code 1 on errors.

Checks: everything `load_meta` checks (modality layout vs info.json, files on disk, annotation
columns), per episode: parquet readable, rows vs episodes.jsonl, state/action widths vs info.json,
timestamp gaps / duplicates / fps, NaN/inf; per video: decodable, frame count vs parquet rows,
timestamps inside the video, resolution / fps / codec vs info.json and across episodes (AV1 warned
as slow); dataset-wide: constant dims (std ~ 0), episode-length outliers, task coverage, info.json
features without files. Videos are probed cheaply (container metadata + counting packets + decoding
the first frame); `tools.full_decode=true` decodes every frame.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import av
import numpy as np

from gr00t_exp.data.errors import DatasetError, Issue, error, warning
from gr00t_exp.data.meta import EPISODES_FILE, INFO_FILE, TASKS_FILE, DatasetMeta, load_meta
from gr00t_exp.data.modality import _ranges, feature_width

log = logging.getLogger(__name__)

SLOW_CODECS = {"av1": "AV1 decodes several times slower than H.264 on CPU (and decord cannot read it)"}


@dataclass
class VideoProbe:
    codec: str
    width: int
    height: int
    fps: float
    frames: int  # packets with data = encoded frames
    keyframes: int
    first_pts_s: float
    end_s: float  # pts of the last frame + one frame duration
    decoded: Optional[int] = None  # frames decoded (full decode only)


def probe_video(path: Path, full_decode: bool = False) -> VideoProbe:
    """Container metadata + packet count; decodes the first frame (or all with full_decode).

    Raises av.error.FFmpegError / ValueError if the file cannot be opened or decoded.
    """
    with av.open(str(path)) as c:
        if not c.streams.video:
            raise ValueError("no video stream")
        s = c.streams.video[0]
        tb = float(s.time_base)
        fps = float(s.average_rate or s.guessed_rate or 0)
        pts = []
        keys = 0
        for p in c.demux(s):
            if p.size and p.pts is not None:
                pts.append(p.pts)
                keys += bool(p.is_keyframe)
        if not pts:
            raise ValueError("no frames in the video stream")
        pts.sort()
        step = 1.0 / fps if fps else 0.0
        probe = VideoProbe(
            codec=s.codec_context.name,
            width=s.codec_context.width,
            height=s.codec_context.height,
            fps=fps,
            frames=len(pts),
            keyframes=keys,
            first_pts_s=pts[0] * tb,
            end_s=pts[-1] * tb + step,
        )
        c.seek(0, stream=s)
        n = 0
        for _ in c.decode(s):
            n += 1
            if not full_decode:
                break
        if n == 0:
            raise ValueError("no frame could be decoded")
        if full_decode:
            probe.decoded = n
        return probe


@dataclass
class Report:
    root: str
    issues: list[Issue] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def to_dict(self) -> dict:
        return {
            "dataset": self.root,
            "ok": not self.errors,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "summary": self.summary,
            "issues": [i.to_dict() for i in self.issues],
        }

    def to_markdown(self) -> str:
        lines = [f"# Dataset report: `{self.root}`", ""]
        verdict = "OK" if not self.errors else "ERRORS"
        lines += [f"**{verdict}**: {len(self.errors)} error(s), {len(self.warnings)} warning(s)", ""]
        if self.summary:
            lines += ["## Summary", "", "| item | value |", "|---|---|"]
            for k, v in self.summary.items():
                lines.append(f"| {k} | {_md(v)} |")
            lines.append("")
        for sev, items in (("Errors", self.errors), ("Warnings", self.warnings)):
            if not items:
                continue
            lines += [f"## {sev}", "", "| check | file | key | problem | fix |", "|---|---|---|---|---|"]
            for i in items:
                lines.append(f"| {i.check} | `{i.file}` | {_md(i.key)} | {_md(i.message)} | {_md(i.fix)} |")
            lines.append("")
        return "\n".join(lines)


def _md(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (dict, list)) else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def validate_dataset(root: str | Path, embodiment: Any = None, *, full_decode: bool = False) -> Report:
    """Run every check; never raises for dataset problems (they become report issues)."""
    report = Report(str(root))
    try:
        meta = load_meta(root, embodiment, strict=False, check_embodiment=False)
    except DatasetError as e:
        report.issues += e.issues
        return report
    report.root = str(meta.root)
    report.issues += meta.issues
    report.summary.update(
        {
            "codebase_version": meta.info.get("codebase_version"),
            "robot_type": meta.info.get("robot_type"),
            "fps": meta.fps,
            "episodes": len(meta.episodes),
            "frames": meta.total_frames,
            "tasks": len(meta.tasks),
            "modality": meta.modality_source,
            "state keys": {k: [s.start, s.end] for k, s in meta.modality.state.items()},
            "action keys": {k: [s.start, s.end] for k, s in meta.modality.action.items()},
            "video keys": {k: v.original_key for k, v in meta.modality.video.items()},
            "annotation keys": {k: meta.modality.column("annotation", k) for k in meta.modality.annotation},
        }
    )
    _check_info_totals(meta, report)
    per_dim = _check_episodes(meta, report)
    _check_videos(meta, report, full_decode)
    _check_constant_dims(meta, report, per_dim)
    _check_lengths(meta, report)
    _check_features_without_files(meta, report)
    return report


def _check_info_totals(meta: DatasetMeta, report: Report) -> None:
    for key, actual in (("total_episodes", len(meta.episodes)), ("total_frames", meta.total_frames)):
        declared = meta.info.get(key)
        if declared is not None and declared != actual:
            report.issues.append(
                warning(
                    "info.totals",
                    INFO_FILE,
                    key,
                    f"declares {declared} but {EPISODES_FILE} sums to {actual}",
                    f"set {key} to {actual}",
                )
            )


def _check_episodes(meta: DatasetMeta, report: Report) -> dict[str, list[np.ndarray]]:
    """Per-episode parquet checks; returns state/action arrays per column for dataset-wide checks."""
    period = 1.0 / meta.fps
    task_use: dict[int, int] = {}
    arrays: dict[str, list[np.ndarray]] = {}
    sa_cols = {meta.modality.column(g, k) for g in ("state", "action") for k in getattr(meta.modality, g)}
    task_cols = {meta.modality.column("annotation", k) for k in meta.modality.annotation} | {"task_index"}
    for ep in meta.episodes:
        path = meta.parquet_path(ep.index)
        if not path.exists():
            continue  # reported by load_meta
        rel = meta.rel(path)
        try:
            data = meta.read_episode(ep.index)
        except DatasetError as e:
            report.issues += e.issues
            continue
        n = len(next(iter(data.values()))) if data else 0
        if n != ep.length:
            report.issues.append(
                error(
                    "episode.length",
                    rel,
                    f"episode {ep.index}",
                    f"{n} rows but {EPISODES_FILE} says length {ep.length}",
                    f"set length to {n} in {EPISODES_FILE} (or restore the parquet file)",
                )
            )
        for col in sa_cols:
            if col not in data:
                continue
            arr = data[col]
            width = feature_width(meta.info, col)
            if width is not None and arr.ndim == 2 and arr.shape[1] != width:
                report.issues.append(
                    error(
                        "episode.width",
                        rel,
                        col,
                        f"rows have {arr.shape[1]} values but info.json declares shape [{width}]",
                        "fix features.<col>.shape in meta/info.json or re-export the episode",
                    )
                )
                continue
            arrays.setdefault(col, []).append(np.asarray(arr, dtype=np.float64))
        for col, arr in data.items():
            if arr.dtype.kind != "f":
                continue
            bad = ~np.isfinite(arr)
            if bad.any():
                rows = np.nonzero(bad.reshape(len(arr), -1).any(1))[0]
                report.issues.append(
                    error(
                        "episode.nonfinite",
                        rel,
                        col,
                        f"{int(bad.sum())} NaN/inf value(s) in episode {ep.index} (first at row {int(rows[0])})",
                        "fix the recording (interpolate or drop those rows) and recompute stats",
                    )
                )
        ts = data.get("timestamp")
        if ts is not None and len(ts) > 1:
            ts = ts.astype(np.float64).reshape(-1)
            d = np.diff(ts)
            dup = np.nonzero(d <= 1e-9)[0]
            gap = np.nonzero(d > 1.5 * period)[0]
            med = float(np.median(d))
            if dup.size:
                report.issues.append(
                    error(
                        "timestamp.duplicate",
                        rel,
                        "timestamp",
                        f"{dup.size} duplicate/decreasing timestamp(s) in episode {ep.index} (first at row {int(dup[0]) + 1})",
                        "drop the duplicated rows so timestamps increase by 1/fps",
                    )
                )
            if abs(med - period) > 0.01 * period and med > 0:
                report.issues.append(
                    error(
                        "timestamp.fps",
                        rel,
                        "timestamp",
                        f"fps mismatch: timestamps advance by {med:.4g} s ({1 / med:.3g} fps) but info.json fps is {meta.fps:g}",
                        f"set fps in meta/info.json to {1 / med:.3g}, or fix the timestamps",
                    )
                )
            elif gap.size:
                report.issues.append(
                    error(
                        "timestamp.gap",
                        rel,
                        "timestamp",
                        f"{gap.size} gap(s) longer than 1.5 frames in episode {ep.index} "
                        f"(first after row {int(gap[0])}: {d[gap[0]]:.4g} s)",
                        "re-record or split the episode at the gap (frames are looked up by timestamp)",
                    )
                )
        for col in task_cols & set(data):
            for t, c in zip(*np.unique(data[col].astype(np.int64), return_counts=True), strict=True):
                task_use[int(t)] = task_use.get(int(t), 0) + int(c)
                if int(t) not in meta.tasks:
                    report.issues.append(
                        error(
                            "task.unknown",
                            rel,
                            col,
                            f"task index {int(t)} (episode {ep.index}) is not in {TASKS_FILE}",
                            f"add task_index {int(t)} to {TASKS_FILE}",
                        )
                    )
    unused = sorted(set(meta.tasks) - set(task_use))
    if unused and task_use:
        report.issues.append(
            warning(
                "task.unused",
                TASKS_FILE,
                ", ".join(map(str, unused)),
                f"{len(unused)} task(s) never referenced by any parquet row",
                "ignore, or remove them from tasks.jsonl",
            )
        )
    lang = {meta.tasks.get(t) for t in task_use if t in meta.tasks} - {"valid"}
    report.summary["distinct instructions"] = len(lang)
    if len(lang) == 1 and len(meta.episodes) > 1:
        report.issues.append(
            warning(
                "task.single",
                TASKS_FILE,
                "",
                "every episode has the same instruction: the policy will learn to ignore language",
                "fine if the robot does one task; otherwise record varied instructions",
            )
        )
    return arrays


def _check_videos(meta: DatasetMeta, report: Report, full_decode: bool) -> None:
    resolutions: dict[str, set[tuple[int, int]]] = {}
    codecs: set[str] = set()
    for name, vspec in meta.modality.video.items():
        key = vspec.original_key
        feat = meta.info.get("features", {}).get(key) or {}
        shape = feat.get("shape") if isinstance(feat, dict) else None
        vinfo = (feat.get("info") or feat.get("video_info") or {}) if isinstance(feat, dict) else {}
        for ep in meta.episodes:
            path = meta.video_path(ep.index, key)
            if not path.exists():
                continue  # reported by load_meta
            rel = meta.rel(path)
            try:
                p = probe_video(path, full_decode)
            except (av.error.FFmpegError, ValueError, OSError) as e:
                report.issues.append(
                    error(
                        "video.decode",
                        rel,
                        f"video.{name}",
                        f"cannot decode: {e}",
                        "re-encode the file (ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4) or restore it",
                    )
                )
                continue
            codecs.add(p.codec)
            resolutions.setdefault(name, set()).add((p.height, p.width))
            frames = p.decoded if p.decoded is not None else p.frames
            if frames < ep.length:
                report.issues.append(
                    error(
                        "video.frames",
                        rel,
                        f"video.{name}",
                        f"{frames} frames but the parquet has {ep.length} rows (episode {ep.index})",
                        "re-export the video with one frame per row, or trim the parquet",
                    )
                )
            elif frames > ep.length:
                report.issues.append(
                    warning(
                        "video.frames",
                        rel,
                        f"video.{name}",
                        f"{frames} frames for {ep.length} parquet rows (episode {ep.index}); extra frames are unused",
                        "check that the video belongs to this episode",
                    )
                )
            if p.fps and abs(p.fps - meta.fps) > 0.01 * meta.fps:
                report.issues.append(
                    error(
                        "video.fps",
                        rel,
                        f"video.{name}",
                        f"fps mismatch: video is {p.fps:g} fps but info.json fps is {meta.fps:g}",
                        "re-encode the video at the dataset's fps, or fix fps in meta/info.json",
                    )
                )
            if isinstance(shape, list) and len(shape) >= 2 and (p.height, p.width) != (shape[0], shape[1]):
                report.issues.append(
                    error(
                        "video.resolution",
                        rel,
                        f"video.{name}",
                        f"video is {p.height}x{p.width} but info.json features.{key}.shape says {shape[0]}x{shape[1]}",
                        "fix the shape in meta/info.json (the model's transforms check it)",
                    )
                )
            declared_codec = vinfo.get("video.codec")
            if declared_codec and declared_codec != p.codec:
                report.issues.append(
                    warning(
                        "video.codec",
                        rel,
                        f"video.{name}",
                        f"codec is {p.codec} but info.json says {declared_codec}",
                        f"set video.codec to {p.codec} in meta/info.json",
                    )
                )
            ts_path = meta.parquet_path(ep.index)
            if ts_path.exists() and ep.index == meta.episodes[0].index:
                _check_timestamps_vs_video(meta, report, ep.index, name, p)
    for name, res in resolutions.items():
        if len(res) > 1:
            report.issues.append(
                error(
                    "video.resolution",
                    "videos/",
                    f"video.{name}",
                    f"episodes have different resolutions: {sorted(res)}",
                    "re-encode the videos to one resolution",
                )
            )
    for c in codecs & set(SLOW_CODECS):
        report.issues.append(
            warning(
                "video.codec_slow",
                "videos/",
                c,
                SLOW_CODECS[c],
                "re-encode to H.264 for training, or use the frame cache (data.cache.enabled=true)",
            )
        )
    report.summary["video codecs"] = sorted(codecs)
    report.summary["video resolutions"] = {k: sorted(v) for k, v in resolutions.items()}


def _check_timestamps_vs_video(meta: DatasetMeta, report: Report, ep: int, name: str, p: VideoProbe) -> None:
    try:
        ts = meta.read_episode(ep, ["timestamp"])["timestamp"].astype(np.float64)
    except (DatasetError, KeyError):
        return
    if not len(ts):
        return
    rel = meta.rel(meta.parquet_path(ep))
    offset = float(ts[0] - p.first_pts_s)
    if abs(offset) > 1e-3:
        report.issues.append(
            warning(
                "timestamp.offset",
                rel,
                f"video.{name}",
                f"timestamps start at {ts[0]:.4g} s but the video's first frame is at {p.first_pts_s:.4g} s "
                f"(offset {offset:+.4g} s, {offset * meta.fps:+.2g} frames)",
                "frames are fetched by timestamp: check the data loader's tolerance handles the offset",
            )
        )
    if ts[-1] > p.end_s + 1e-3:
        report.issues.append(
            error(
                "timestamp.beyond_video",
                rel,
                f"video.{name}",
                f"last timestamp {ts[-1]:.4g} s is after the end of the video ({p.end_s:.4g} s)",
                "re-export the video or the timestamps so every row has a frame",
            )
        )


def _check_constant_dims(meta: DatasetMeta, report: Report, arrays: dict[str, list[np.ndarray]]) -> None:
    for group in ("state", "action"):
        for key, spec in getattr(meta.modality, group).items():
            col = meta.modality.column(group, key)
            if col not in arrays:
                continue
            x = np.concatenate(arrays[col])
            if x.ndim != 2 or x.shape[1] < spec.end:
                continue
            sub = x[:, spec.start : spec.end]
            finite = np.where(np.isfinite(sub), sub, 0.0)
            const = np.nonzero(finite.std(0) < 1e-8)[0]
            if const.size:
                report.issues.append(
                    warning(
                        "data.constant",
                        col,
                        f"{group}.{key}",
                        f"{const.size} of {spec.width} dims are constant (std ~ 0): {col} dims "
                        f"{_ranges([int(d) + spec.start for d in const])}",
                        "fine for unused joints; normalisation maps them to 0 (leave them out of the embodiment keys)",
                    )
                )


def _check_lengths(meta: DatasetMeta, report: Report) -> None:
    lengths = np.array([e.length for e in meta.episodes])
    report.summary["episode length min/median/max"] = [
        int(lengths.min()),
        float(np.median(lengths)),
        int(lengths.max()),
    ]
    med = float(np.median(lengths))
    mad = float(np.median(np.abs(lengths - med))) or 1.0
    for e in meta.episodes:
        if e.length < 16:
            report.issues.append(
                warning(
                    "episode.short",
                    EPISODES_FILE,
                    f"episode {e.index}",
                    f"only {e.length} steps (< 16, the action horizon)",
                    "check the recording; very short episodes are mostly padding",
                )
            )
        elif len(lengths) >= 4 and (
            abs(e.length - med) > 5 * mad * 1.4826 and (e.length > 3 * med or e.length < med / 3)
        ):
            report.issues.append(
                warning(
                    "episode.outlier",
                    EPISODES_FILE,
                    f"episode {e.index}",
                    f"length {e.length} is far from the median {med:g}",
                    "check for a failed or never-stopped recording",
                )
            )


def _check_features_without_files(meta: DatasetMeta, report: Report) -> None:
    first = meta.episodes[0].index
    for col, feat in meta.info.get("features", {}).items():
        if not isinstance(feat, dict):
            continue
        if feat.get("dtype") == "video":
            if not any(meta.video_path(e.index, col).exists() for e in meta.episodes):
                report.issues.append(
                    warning(
                        "info.feature_files",
                        INFO_FILE,
                        f"features.{col}",
                        "video feature listed in info.json but no episode has a file for it",
                        f"remove features.{col} from info.json (or add the videos)",
                    )
                )
        elif meta.columns and col not in meta.columns:
            report.issues.append(
                warning(
                    "info.feature_files",
                    INFO_FILE,
                    f"features.{col}",
                    f"feature listed in info.json but not a column of {meta.rel(meta.parquet_path(first))}",
                    f"remove features.{col} from info.json",
                )
            )


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "dataset_report.md", out_dir / "dataset_report.json"
    md.write_text(report.to_markdown())
    js.write_text(json.dumps(report.to_dict(), indent=2))
    return md, js


def print_summary(report: Report) -> None:
    print(f"dataset: {report.root}")
    for k in ("episodes", "frames", "fps", "tasks", "modality"):
        if k in report.summary:
            print(f"  {k}: {report.summary[k]}")
    for i in report.errors:
        print(f"ERROR   {i}")
    for i in report.warnings:
        print(f"warning {i}")
    print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")


def run(cfg) -> int:
    """mode=validate: report into the run dir; exit 1 on errors (or warnings with tools.fail_on_warning)."""
    from gr00t_exp.data.tools.common import tool_dataset_path, tool_output_dir

    tools = cfg.get("tools") or {}
    try:
        root = tool_dataset_path(cfg)
    except ValueError as e:
        print(f"error: {e}")
        return 1
    report = validate_dataset(root, cfg.get("embodiment"), full_decode=bool(tools.get("full_decode", False)))
    md, js = write_report(report, tool_output_dir(cfg))
    print_summary(report)
    print(f"report: {md} and {js}")
    if report.errors or (tools.get("fail_on_warning", False) and report.warnings):
        return 1
    return 0
