"""`mode=convert`: LeRobot v3.0 -> v2.1 and v2.x -> v3.0, lossless.

Parquet values are copied unchanged (same arrow types). Videos are never re-encoded when avoidable:
- v2 -> v3: each camera's per-episode mp4s are concatenated into one file by re-muxing packets
  (timestamps shifted by the preceding episodes' durations); `videos/<key>/from_timestamp` /
  `to_timestamp` in meta/episodes record each episode's span.
- v3 -> v2: each episode's span is re-muxed into its own mp4 when the span starts on a key frame
  (true for files written by LeRobot and by this converter: every episode was encoded separately).
  Otherwise that episode is decoded and re-encoded with x264 in lossless mode (qp 0, the source's
  pixel format), so the decoded frames are still identical; this is logged.
All files go into tools.output (a new directory); the source is only read.
"""

from __future__ import annotations

import json
import logging
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gr00t_exp.data.errors import DatasetError, error
from gr00t_exp.data.meta import DEFAULT_DATA_PATH, DEFAULT_VIDEO_PATH, load_meta, read_info

log = logging.getLogger(__name__)

V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V3_EPISODES = "meta/episodes/chunk-000/file-000.parquet"
COPY_META = ("stats.json", "modality.json", "relative_stats.json")


# -- video re-muxing ---------------------------------------------------------------------------


def concat_videos(sources: list[Path], dest: Path) -> list[tuple[float, float]]:
    """Concatenate mp4s (same codec/params) by re-muxing; return each source's (from, to) seconds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    spans: list[tuple[float, float]] = []
    with av.open(str(dest), "w") as out:
        ostream = None
        offset = Fraction(0)
        for src in sources:
            with av.open(str(src)) as inp:
                istream = inp.streams.video[0]
                if ostream is None:
                    ostream = out.add_stream_from_template(istream)
                tb = istream.time_base
                rate = istream.average_rate or istream.guessed_rate
                packets = [p for p in inp.demux(istream) if p.size]
                if not packets:
                    raise ValueError(f"{src}: no video packets")
                first = min(p.pts for p in packets)
                shift = int(round(offset / tb)) - first
                for p in packets:
                    p.pts += shift
                    if p.dts is not None:
                        p.dts += shift
                    p.stream = ostream
                    p.time_base = tb
                    out.mux(p)
                duration = len(packets) / Fraction(rate)
                spans.append((float(offset), float(offset + duration)))
                offset += duration
    return spans


def cut_video(src: Path, dest: Path, start_s: float, end_s: float) -> str:
    """Write frames with pts in [start_s, end_s) of src to dest; return "remux" or "reencode"."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    eps = 1e-4
    with av.open(str(src)) as inp:
        istream = inp.streams.video[0]
        tb = istream.time_base
        packets = [p for p in inp.demux(istream) if p.size and start_s - eps <= p.pts * tb < end_s - eps]
    if not packets:
        raise ValueError(f"{src}: no frames in [{start_s}, {end_s})")
    if packets[0].is_keyframe:
        with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
            istream = inp.streams.video[0]
            ostream = out.add_stream_from_template(istream)
            shift = -min(p.pts for p in packets)
            for p in inp.demux(istream):
                if not (p.size and start_s - eps <= p.pts * tb < end_s - eps):
                    continue
                p.pts += shift
                if p.dts is not None:
                    p.dts += shift
                p.stream = ostream
                p.time_base = tb
                out.mux(p)
        return "remux"
    log.warning(
        "%s: the span [%.3f, %.3f) does not start on a key frame: re-encoding losslessly", src, start_s, end_s
    )
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        istream = inp.streams.video[0]
        rate = istream.average_rate or istream.guessed_rate
        ostream = out.add_stream("libx264", rate=rate)
        ostream.width, ostream.height = istream.codec_context.width, istream.codec_context.height
        ostream.pix_fmt = istream.codec_context.pix_fmt or "yuv420p"
        ostream.options = {"qp": "0", "preset": "veryfast"}
        n = 0
        for frame in inp.decode(istream):
            t = float(frame.pts * tb)
            if not (start_s - eps <= t < end_s - eps):
                continue
            frame.pts = n
            frame.time_base = Fraction(1) / Fraction(rate)
            n += 1
            for p in ostream.encode(frame):
                out.mux(p)
        for p in ostream.encode():
            out.mux(p)
    return "reencode"


# -- v2 -> v3 ----------------------------------------------------------------------------------


def v2_to_v3(src: Path, dest: Path) -> Path:
    meta = load_meta(src, check_embodiment=False)
    _fresh(dest)
    tables = [meta.read_table(e.index) for e in meta.episodes]
    data = pa.concat_tables(tables, promote_options="none")
    data_file = dest / V3_DATA_PATH.format(chunk_index=0, file_index=0)
    data_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, data_file)
    video_keys = [
        k for k, f in meta.info["features"].items() if isinstance(f, dict) and f.get("dtype") == "video"
    ]
    video_keys = [k for k in video_keys if all(meta.video_path(e.index, k).exists() for e in meta.episodes)]
    spans = {}
    for key in video_keys:
        spans[key] = concat_videos(
            [meta.video_path(e.index, key) for e in meta.episodes],
            dest / V3_VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0),
        )
    rows: dict[str, list[Any]] = {
        "episode_index": [],
        "tasks": [],
        "length": [],
        "data/chunk_index": [],
        "data/file_index": [],
        "dataset_from_index": [],
        "dataset_to_index": [],
    }
    for key in video_keys:
        for f in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"):
            rows[f"videos/{key}/{f}"] = []
    start = 0
    for i, e in enumerate(meta.episodes):
        rows["episode_index"].append(e.index)
        rows["tasks"].append(e.tasks)
        rows["length"].append(e.length)
        rows["data/chunk_index"].append(0)
        rows["data/file_index"].append(0)
        rows["dataset_from_index"].append(start)
        rows["dataset_to_index"].append(start + tables[i].num_rows)
        start += tables[i].num_rows
        for key in video_keys:
            rows[f"videos/{key}/chunk_index"].append(0)
            rows[f"videos/{key}/file_index"].append(0)
            rows[f"videos/{key}/from_timestamp"].append(spans[key][i][0])
            rows[f"videos/{key}/to_timestamp"].append(spans[key][i][1])
    ep_file = dest / V3_EPISODES
    ep_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), ep_file)
    tasks = sorted(meta.tasks.items())
    pq.write_table(
        pa.table({"task_index": [t for t, _ in tasks], "task": [s for _, s in tasks]}),
        dest / "meta" / "tasks.parquet",
    )
    info = dict(meta.info)
    info.update(
        codebase_version="v3.0",
        data_path=V3_DATA_PATH,
        video_path=V3_VIDEO_PATH if video_keys else None,
        total_episodes=len(meta.episodes),
        total_frames=data.num_rows,
        total_tasks=len(meta.tasks),
        chunks_size=meta.chunks_size,
        data_files_size_in_mb=100,
        video_files_size_in_mb=500,
    )
    for k in ("total_chunks", "total_videos"):
        info.pop(k, None)
    _write_info(dest, info)
    _copy_meta(src, dest)
    return dest


# -- v3 -> v2.1 --------------------------------------------------------------------------------


def _v3_tasks(root: Path) -> dict[int, str]:
    path = root / "meta" / "tasks.parquet"
    if not path.exists():
        raise DatasetError(error("convert.v3", "meta/tasks.parquet", "", "file not found", "restore it"))
    t = pq.read_table(path)
    text_col = next((c for c in ("task", "__index_level_0__") if c in t.column_names), None)
    if text_col is None:  # pandas index stored under another name
        text_col = next(c for c in t.column_names if pa.types.is_string(t.schema.field(c).type))
    return dict(zip(t.column("task_index").to_pylist(), t.column(text_col).to_pylist(), strict=True))


def v3_to_v2(src: Path, dest: Path) -> Path:
    info = read_info(src)
    ep_files = sorted((src / "meta" / "episodes").rglob("*.parquet"))
    if not ep_files:
        raise DatasetError(
            error(
                "convert.v3",
                "meta/episodes/",
                "",
                "no episode metadata parquet files",
                "restore meta/episodes/",
            )
        )
    episodes = pa.concat_tables([pq.read_table(f) for f in ep_files]).to_pylist()
    episodes.sort(key=lambda r: r["episode_index"])
    tasks = _v3_tasks(src)
    _fresh(dest)
    chunks_size = int(info.get("chunks_size") or 1000)
    video_keys = [k for k, f in info["features"].items() if isinstance(f, dict) and f.get("dtype") == "video"]
    data_cache: dict[Path, pa.Table] = {}
    methods: dict[str, int] = {}
    for ep in episodes:
        idx = int(ep["episode_index"])
        chunk = idx // chunks_size
        dpath = src / info["data_path"].format(
            chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"]
        )
        if dpath not in data_cache:
            data_cache.clear()  # one file at a time: files are sorted by episode
            data_cache[dpath] = pq.read_table(dpath)
        table = data_cache[dpath]
        part = table.filter(pc.equal(table.column("episode_index"), idx))
        out = dest / DEFAULT_DATA_PATH.format(episode_chunk=chunk, episode_index=idx)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, out)
        for key in video_keys:
            if f"videos/{key}/from_timestamp" not in ep or ep[f"videos/{key}/from_timestamp"] is None:
                continue
            vsrc = src / info["video_path"].format(
                video_key=key,
                chunk_index=ep[f"videos/{key}/chunk_index"],
                file_index=ep[f"videos/{key}/file_index"],
            )
            vdst = dest / DEFAULT_VIDEO_PATH.format(episode_chunk=chunk, video_key=key, episode_index=idx)
            how = cut_video(vsrc, vdst, ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"])
            methods[how] = methods.get(how, 0) + 1
    meta_dir = dest / "meta"
    (meta_dir / "episodes.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "episode_index": int(e["episode_index"]),
                    "tasks": list(e["tasks"]),
                    "length": int(e["length"]),
                }
            )
            + "\n"
            for e in episodes
        )
    )
    (meta_dir / "tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": int(i), "task": t}) + "\n" for i, t in sorted(tasks.items()))
    )
    n = len(episodes)
    info = dict(info)
    info.update(
        codebase_version="v2.1",
        data_path=DEFAULT_DATA_PATH,
        video_path=DEFAULT_VIDEO_PATH if video_keys else None,
        total_episodes=n,
        total_chunks=(max(int(e["episode_index"]) for e in episodes) // chunks_size + 1) if n else 0,
        total_videos=n * len(video_keys),
        total_tasks=len(tasks),
    )
    for k in ("data_files_size_in_mb", "video_files_size_in_mb"):
        info.pop(k, None)
    _write_info(dest, info)
    _copy_meta(src, dest)
    log.info("v3 -> v2.1 videos: %s", methods)
    return dest


# -- helpers -----------------------------------------------------------------------------------


def _fresh(dest: Path) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists and is not empty; choose a new tools.output")
    (dest / "meta").mkdir(parents=True, exist_ok=True)


def _write_info(dest: Path, info: dict) -> None:
    (dest / "meta" / "info.json").write_text(json.dumps(info, indent=4))


def _copy_meta(src: Path, dest: Path) -> None:
    for name in COPY_META:
        if (src / "meta" / name).exists():
            shutil.copy2(src / "meta" / name, dest / "meta" / name)


def convert(src: str | Path, dest: str | Path, target_version: str = "v2.1") -> Path:
    """Convert src into a new directory dest. v3.0 -> v2.1 or v2.x -> v3.0."""
    src, dest = Path(src).expanduser().resolve(), Path(dest).expanduser().resolve()
    if dest == src or src in dest.parents:
        raise ValueError("tools.output must be a new directory outside the source dataset")
    version = str(read_info(src).get("codebase_version", ""))
    if target_version.startswith("v3"):
        if version.startswith("v3"):
            raise ValueError(f"{src} is already {version}")
        return v2_to_v3(src, dest)
    if target_version in ("v2.1", "v2.0", "v2"):
        if not version.startswith("v3"):
            raise ValueError(
                f"{src} is already {version}: nothing to convert (use tools.target_version=v3.0)"
            )
        return v3_to_v2(src, dest)
    raise ValueError(f"tools.target_version={target_version!r}: use v2.1 or v3.0")


def run(cfg) -> int:
    """mode=convert: tools.dataset -> tools.output (tools.target_version v2.1 | v3.0)."""
    from gr00t_exp.data.tools.common import tool_dataset_path

    tools = cfg.tools
    if not tools.get("output"):
        print("error: set tools.output=/path/to/new/dataset (the source is never modified)")
        return 1
    try:
        dest = convert(tool_dataset_path(cfg), tools.output, str(tools.get("target_version", "v2.1")))
    except (DatasetError, ValueError, FileExistsError) as e:
        print(f"error: {e}")
        return 1
    print(f"wrote {dest}")
    return 0


def frames_equal(a: Path, b: Path) -> bool:
    """True if both videos decode to the same frames (used by tests and by users to verify)."""
    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        fa = [f.to_ndarray() for f in ca.decode(video=0)]
        fb = [f.to_ndarray() for f in cb.decode(video=0)]
    return len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
