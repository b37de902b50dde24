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
import pyarrow as pa
import pyarrow.parquet as pq

from gr00t_exp.data.errors import DatasetError, Issue, error, warning
from gr00t_exp.data.meta import EPISODES_FILE, INFO_FILE, TASKS_FILE, DatasetMeta, load_meta
from gr00t_exp.data.modality import _ranges, feature_width

log = logging.getLogger(__name__)

SLOW_CODECS = {"av1": "AV1 decodes several times slower than H.264 on CPU (and decord cannot read it)"}


@dataclass
class VideoProbe:
    codec: str  # canonical codec name (av1, h264, hevc...), not the decoder's (libdav1d)
    width: int
    height: int
    fps: float
    frames: int  # packets with data = encoded frames
    keyframes: int
    first_pts_s: float
    end_s: float  # pts of the last frame + one frame duration
    decoded: Optional[int] = None  # frames decoded (full decode only)
    pts_s: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # every frame, sorted


def probe_video(path: Path, full_decode: bool = False) -> VideoProbe:
    """Container metadata + packet count; decodes the first and the last frame (or all with full_decode).

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
        codec = s.codec_context.codec
        probe = VideoProbe(
            codec=str(getattr(codec, "canonical_name", None) or codec.name),
            width=s.codec_context.width,
            height=s.codec_context.height,
            fps=fps,
            frames=len(pts),
            keyframes=keys,
            first_pts_s=pts[0] * tb,
            end_s=pts[-1] * tb + step,
            pts_s=np.asarray(pts, np.float64) * tb,
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
        elif len(pts) > 1:
            _decode_last(c, s, pts[-1])
        return probe


def _decode_last(container: Any, stream: Any, last_pts: int) -> None:
    """Seek to the key frame before the last frame and decode up to it (a truncated file fails here)."""
    container.seek(last_pts, stream=stream, backward=True, any_frame=False)
    for frame in container.decode(stream):
        if frame.pts is not None and frame.pts >= last_pts:
            return
    raise ValueError("the last frame could not be decoded (truncated file?)")


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


def embodiment_given(embodiment: Any) -> bool:
    """An embodiment to validate against: a config with a name (`~embodiment` leaves name '???')."""
    if embodiment is None:
        return False
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(embodiment) and OmegaConf.is_missing(embodiment, "name"):
            return False
    except (ImportError, KeyError):
        pass
    name = getattr(embodiment, "name", None)
    return bool(name) and name != "???"


def chosen_embodiment(cfg: Any) -> Any:
    """The embodiment the user asked for on the command line (embodiment=... or experiment=...),
    else None: the composed default (gr1_arms_only) says nothing about a dataset a tool is given."""
    emb = cfg.get("embodiment")
    if not embodiment_given(emb):
        return None
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return emb
        overrides = list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return emb
    chosen = any(
        o.lstrip("+~").split("=")[0].split(".")[0] in ("embodiment", "experiment") for o in overrides
    )
    return emb if chosen else None


def validate_dataset(root: str | Path, embodiment: Any = None, *, full_decode: bool = False) -> Report:
    """Run every check; never raises for dataset problems (they become report issues).

    With an embodiment, its keys are checked against the dataset's modality (and a dataset without
    modality.json is read with the embodiment's layout); without one, a layout derived from the
    dataset is validated (the report says so).
    """
    report = Report(str(root))
    given = embodiment_given(embodiment)
    try:
        meta = load_meta(root, embodiment if given else None, strict=False, check_embodiment=given)
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
            "layout checked": _layout_note(meta, embodiment if given else None),
            "state keys": {k: [s.start, s.end] for k, s in meta.modality.state.items()},
            "action keys": {k: [s.start, s.end] for k, s in meta.modality.action.items()},
            "video keys": {k: v.original_key for k, v in meta.modality.video.items()},
            "annotation keys": {k: meta.modality.column("annotation", k) for k in meta.modality.annotation},
        }
    )
    _check_info_totals(meta, report)
    per_dim = _check_data(meta, report, full_decode)
    _check_constant_dims(meta, report, per_dim)
    _check_lengths(meta, report)
    _check_features_without_files(meta, report)
    return report


def _layout_note(meta: DatasetMeta, embodiment: Any) -> str:
    source = {
        "file": "the dataset's meta/modality.json",
        "embodiment": "the embodiment's modality (the dataset has no modality.json)",
        "generated": "a layout derived from the dataset (no modality.json, no embodiment given)",
    }[meta.modality_source]
    if embodiment is None:
        return f"{source}; embodiment keys not checked (pass embodiment=<name> to check them)"
    return f"{source}; keys of embodiment={getattr(embodiment, 'name', '?')} checked"


def data_checks(meta: DatasetMeta, *, full_decode: bool = False) -> list[Issue]:
    """The checks that read the data (what training's pre-flight runs): finite values, row counts,
    timestamps vs fps, unlisted episodes, every video opens and decodes its first and last frame,
    frame counts and fps vs info.json. Returns the issues (errors and warnings)."""
    report = Report(str(meta.root))
    _check_data(meta, report, full_decode)
    return report.issues


def _check_data(meta: DatasetMeta, report: Report, full_decode: bool) -> dict[str, list[np.ndarray]]:
    per_dim = _check_episodes(meta, report)
    _check_row_counts(meta, report)
    _check_unlisted(meta, report)
    _check_videos(meta, report, full_decode)
    return per_dim


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
                    f"{n} rows but {EPISODES_FILE} says length {ep.length}"
                    + (f" ({n - ep.length} rows would never be sampled)" if n > ep.length else ""),
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


def _check_row_counts(meta: DatasetMeta, report: Report) -> None:
    """v3.0: a data file's rows vs the episodes that claim them (unclaimed rows are never sampled)."""
    if not meta.is_v3:
        return
    claimed: dict[Path, int] = {}
    for e in meta.episodes:
        p = meta.parquet_path(e.index)
        claimed[p] = claimed.get(p, 0) + e.length
    for path, n in claimed.items():
        if not path.exists():
            continue  # reported by load_meta
        try:
            rows = pq.read_metadata(path).num_rows
        except (pa.ArrowInvalid, OSError) as e:
            report.issues.append(
                error(
                    "parquet.corrupt",
                    meta.rel(path),
                    "",
                    f"cannot read parquet (truncated or corrupt: {e})",
                    "restore the file from the original dataset",
                )
            )
            continue
        if rows != n:
            report.issues.append(
                error(
                    "episode.length",
                    meta.rel(path),
                    "",
                    f"{rows} rows but the episodes in {meta.episodes_file} claim {n}"
                    + (f" ({rows - n} rows would never be sampled)" if rows > n else ""),
                    "restore meta/episodes/ (lengths and dataset_from_index) from the original dataset",
                )
            )


def _check_unlisted(meta: DatasetMeta, report: Report) -> None:
    """v2: episode parquet files that episodes.jsonl does not list (training would skip them)."""
    if meta.is_v3:
        return
    listed = set(meta.episode_indices)
    unlisted = []
    for p in sorted((meta.root / "data").rglob("episode_*.parquet")):
        try:
            idx = int(p.stem.removeprefix("episode_"))
        except ValueError:
            continue
        if idx not in listed and meta.parquet_path(idx) == p:
            unlisted.append((idx, p))
    if unlisted:
        shown = ", ".join(meta.rel(p) for _, p in unlisted[:3]) + (" ..." if len(unlisted) > 3 else "")
        report.issues.append(
            error(
                "episode.unlisted",
                EPISODES_FILE,
                ", ".join(f"episode {i}" for i, _ in unlisted[:5]),
                f"{len(unlisted)} episode parquet file(s) are not listed, so they are never used: {shown}",
                "add a line {episode_index, tasks, length} per episode to meta/episodes.jsonl "
                "(or move the files out of data/)",
            )
        )


def _check_videos(meta: DatasetMeta, report: Report, full_decode: bool) -> None:
    resolutions: dict[str, set[tuple[int, int]]] = {}
    codecs: set[str] = set()
    probes: dict[Path, Optional[VideoProbe]] = {}  # v3.0 episodes share files: probe each once
    for name, vspec in meta.modality.video.items():
        key = vspec.original_key
        for ep in meta.episodes:
            path = meta.video_path(ep.index, key)
            if not path.exists():
                continue  # reported by load_meta
            first_use = path not in probes
            if first_use:
                probes[path] = _probe_or_report(meta, report, path, name, full_decode)
            p = probes[path]
            if p is None:
                continue
            if first_use:
                codecs.add(p.codec)
                resolutions.setdefault(name, set()).add((p.height, p.width))
                _check_video_file(meta, report, path, name, key, p)
            _check_episode_frames(meta, report, ep, name, key, path, p, full_decode)
            if ep.index == meta.episodes[0].index:
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


def _probe_or_report(
    meta: DatasetMeta, report: Report, path: Path, name: str, full_decode: bool
) -> Optional[VideoProbe]:
    try:
        return probe_video(path, full_decode)
    except (av.error.FFmpegError, ValueError, OSError) as e:
        report.issues.append(
            error(
                "video.decode",
                meta.rel(path),
                f"video.{name}",
                f"cannot decode: {e}",
                "re-encode the file (ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4) or restore it",
            )
        )
        return None


def _check_video_file(
    meta: DatasetMeta, report: Report, path: Path, name: str, key: str, p: VideoProbe
) -> None:
    """Per file: fps, resolution and codec vs info.json."""
    rel = meta.rel(path)
    feat = meta.info.get("features", {}).get(key) or {}
    shape = feat.get("shape") if isinstance(feat, dict) else None
    vinfo = (feat.get("info") or feat.get("video_info") or {}) if isinstance(feat, dict) else {}
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
    if declared_codec and _canonical_codec(declared_codec) != p.codec:
        report.issues.append(
            warning(
                "video.codec",
                rel,
                f"video.{name}",
                f"codec is {p.codec} but info.json says {declared_codec}",
                f"set video.codec to {p.codec} in meta/info.json",
            )
        )


def _canonical_codec(name: str) -> str:
    """Encoder / decoder names as the codec they produce (info.json may say libx264 or libsvtav1)."""
    try:
        return str(av.codec.Codec(name, "r").canonical_name)
    except (ValueError, av.error.FFmpegError):
        pass
    try:
        return str(av.codec.Codec(name, "w").canonical_name)
    except (ValueError, av.error.FFmpegError):
        return name


def _check_episode_frames(
    meta: DatasetMeta,
    report: Report,
    ep: Any,
    name: str,
    key: str,
    path: Path,
    p: VideoProbe,
    full_decode: bool,
) -> None:
    """The episode's frames (v3.0: those inside its from/to span) vs its parquet rows."""
    span = meta.video_span(ep.index, key)
    if span is not None:
        half = 0.5 / meta.fps
        frames = int(((p.pts_s >= span[0] - half) & (p.pts_s < span[1] - half)).sum())
        where = f" between {span[0]:.4g} s and {span[1]:.4g} s"
    else:
        frames = p.decoded if full_decode and p.decoded is not None else p.frames
        where = ""
    rel = meta.rel(path)
    if frames < ep.length:
        report.issues.append(
            error(
                "video.frames",
                rel,
                f"video.{name}",
                f"{frames} frames{where} but the parquet has {ep.length} rows (episode {ep.index})",
                "re-export the video with one frame per row, or trim the parquet",
            )
        )
    elif frames > ep.length:
        report.issues.append(
            warning(
                "video.frames",
                rel,
                f"video.{name}",
                f"{frames} frames{where} for {ep.length} parquet rows (episode {ep.index}); extra frames are unused",
                "check that the video belongs to this episode",
            )
        )


def _check_timestamps_vs_video(meta: DatasetMeta, report: Report, ep: int, name: str, p: VideoProbe) -> None:
    try:
        ts = meta.read_episode(ep, ["timestamp"])["timestamp"].astype(np.float64)
    except (DatasetError, KeyError):
        return
    if not len(ts):
        return
    rel = meta.rel(meta.parquet_path(ep))
    span = meta.video_span(ep, meta.modality.video[name].original_key)
    if span is not None:  # v3.0: the episode plays from span[0] inside a shared file
        ts = ts + span[0]
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
    embodiment = chosen_embodiment(cfg)
    if embodiment is None:
        print("no embodiment chosen: validating against a layout derived from the dataset")
    report = validate_dataset(root, embodiment, full_decode=bool(tools.get("full_decode", False)))
    md, js = write_report(report, tool_output_dir(cfg))
    print_summary(report)
    print(f"report: {md} and {js}")
    if report.errors or (tools.get("fail_on_warning", False) and report.warnings):
        return 1
    return 0
