"""`mode=convert`: LeRobot v3.0 -> v2.1 and v2.x -> v3.0, lossless, for every video codec.

Parquet values are copied unchanged (same arrow types). Videos are never decoded to be re-encoded
when it can be avoided: packets are copied (gr00t_exp.data.mp4), which works for any codec, AV1
included.
- v2 -> v3: each camera's per-episode mp4s are joined into one file (timestamps shifted by the
  preceding episodes' durations); `videos/<key>/from_timestamp` / `to_timestamp` in
  meta/episodes record each episode's span, as LeRobot does.
- v3 -> v2: each episode's span is copied into its own mp4. A span that does not start on a key
  frame (never the case in files written by LeRobot or by this converter: every episode was
  encoded on its own) is re-encoded losslessly with the same codec family; logged.
The output is LeRobot's own layout: meta/tasks.parquet indexed by the task text (v3.0),
meta/episodes_stats.jsonl (v2.1; LeRobot 0.3 needs it), and only video features that have files.
Everything is written into a temp folder beside tools.output and renamed at the end, so a failed
run leaves nothing behind and can simply be retried. The source is only read.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gr00t_exp.data.errors import DatasetError, error
from gr00t_exp.data.meta import DatasetMeta, load_meta, read_info
from gr00t_exp.data.mp4 import concat_videos, cut_video, frames_equal
from gr00t_exp.data.v3_index import (
    EPISODES_DIR,
    TASKS_PARQUET,
    V3_DATA_PATH,
    V3_VIDEO_PATH,
    V3Episode,
    read_v3_episodes,
    read_v3_tasks,
)
from gr00t_exp.data.writer import (
    LeRobotWriter,
    drop_features,
    episode_stats,
    staged_dir,
    video_file,
    video_keys,
    write_json,
    write_parquet,
    write_v3_tasks,
)

__all__ = ["concat_videos", "convert", "cut_video", "frames_equal", "run", "v2_to_v3", "v3_to_v2"]

log = logging.getLogger(__name__)

V3_EPISODES = f"{EPISODES_DIR}/chunk-000/file-000.parquet"
COPY_META = ("stats.json", "modality.json", "relative_stats.json")
V3_SIZES_MB = {"data_files_size_in_mb": 100, "video_files_size_in_mb": 500}


def _keys_with_files(keys: list[str], has_file: dict[str, list[bool]], where: str) -> list[str]:
    """The video keys every episode has a file for. A key no episode has (an info.json entry
    without videos) is dropped, since LeRobot would try to open it; one only some episodes have
    is an error."""
    kept = []
    for key in keys:
        flags = has_file[key]
        if all(flags):
            kept.append(key)
        elif not any(flags):
            log.warning("convert: video feature %s has no files: left out of the output", key)
        else:
            missing = [i for i, f in enumerate(flags) if not f]
            raise DatasetError(
                error(
                    "convert.video",
                    where,
                    key,
                    f"{len(missing)} of {len(flags)} episodes have no video for this camera",
                    "restore the missing videos, or remove the feature from meta/info.json",
                )
            )
    return kept


def _flat_stats(stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{column: {stat: value}} -> {"stats/<column>/<stat>": value} (v3.0 episodes columns)."""
    return {f"stats/{col}/{name}": v for col, st in stats.items() for name, v in st.items()}


def _nested_stats(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, v in row.items():
        if name.startswith("stats/") and v is not None:
            col, stat = name[len("stats/") :].rsplit("/", 1)
            out.setdefault(col, {})[stat] = v
    return out


# -- v2 -> v3 ----------------------------------------------------------------------------------


def v2_to_v3(src: Path, dest: Path) -> Path:
    """Write the v3.0 form of the v2 dataset `src` into the new folder `dest`."""
    meta = load_meta(src, check_embodiment=False)
    tables = [meta.read_table(e.index) for e in meta.episodes]
    data = pa.concat_tables(tables, promote_options="none")
    write_parquet(dest / V3_DATA_PATH.format(chunk_index=0, file_index=0), data)
    all_keys = video_keys(meta.info["features"])
    has_file = {k: [meta.video_path(e.index, k).exists() for e in meta.episodes] for k in all_keys}
    keys = _keys_with_files(all_keys, has_file, "meta/info.json")
    spans = {
        key: concat_videos(
            [meta.video_path(e.index, key) for e in meta.episodes],
            dest / V3_VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0),
        )
        for key in keys
    }
    write_parquet(dest / V3_EPISODES, pa.Table.from_pylist(_v3_episode_rows(meta, tables, keys, spans)))
    write_v3_tasks(dest / TASKS_PARQUET, meta.tasks)
    info = dict(meta.info)
    info.update(
        codebase_version="v3.0",
        data_path=V3_DATA_PATH,
        video_path=V3_VIDEO_PATH if keys else None,
        total_episodes=len(meta.episodes),
        total_frames=data.num_rows,
        total_tasks=len(meta.tasks),
        chunks_size=meta.chunks_size,
        features=drop_features(info["features"], set(all_keys) - set(keys)),
        **{k: info.get(k, v) for k, v in V3_SIZES_MB.items()},
    )
    for k in ("total_chunks", "total_videos"):
        info.pop(k, None)
    write_json(dest / "meta" / "info.json", info)
    _copy_meta(src, dest)
    return dest


def _v3_episode_rows(
    meta: DatasetMeta, tables: list[pa.Table], keys: list[str], spans: dict[str, list[tuple[float, float]]]
) -> list[dict[str, Any]]:
    """meta/episodes rows as LeRobot v3.0 writes them, with per-episode statistics (v2.1's
    episodes_stats.jsonl, else computed from the parquet)."""
    rows, start = [], 0
    for i, (e, table) in enumerate(zip(meta.episodes, tables, strict=True)):
        row: dict[str, Any] = {
            "episode_index": e.index,
            "tasks": list(e.tasks),
            "length": e.length,
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": start,
            "dataset_to_index": start + table.num_rows,
        }
        for key in keys:
            row[f"videos/{key}/chunk_index"] = 0
            row[f"videos/{key}/file_index"] = 0
            row[f"videos/{key}/from_timestamp"], row[f"videos/{key}/to_timestamp"] = spans[key][i]
        stats = (meta.episodes_stats or {}).get(e.index) or episode_stats(table)
        row.update(_flat_stats(stats))
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        rows.append(row)
        start += table.num_rows
    return rows


# -- v3 -> v2.1 --------------------------------------------------------------------------------


def _v3_stats(src: Path) -> dict[int, dict]:
    """episode_index -> its statistics from the `stats/...` columns of meta/episodes (may be empty)."""
    out: dict[int, dict] = {}
    for f in sorted((src / EPISODES_DIR).rglob("*.parquet")):
        names = pq.read_schema(f).names
        cols = [n for n in names if n.startswith("stats/")]
        if not cols:
            continue
        for row in pq.read_table(f, columns=["episode_index", *cols]).to_pylist():
            out[int(row.pop("episode_index"))] = _nested_stats(row)
    return out


def v3_to_v2(src: Path, dest: Path) -> Path:
    """Write the v2.1 form of the v3.0 dataset `src` into the new folder `dest`."""
    info = read_info(src)
    episodes = read_v3_episodes(src)
    tasks = read_v3_tasks(src)
    stats = _v3_stats(src)
    all_keys = video_keys(info["features"])
    keys = _keys_with_files(
        all_keys, {k: [k in e.videos for e in episodes] for k in all_keys}, f"{EPISODES_DIR}/"
    )
    writer = LeRobotWriter(
        dest,
        fps=info["fps"],
        robot_type=info.get("robot_type"),
        features=drop_features(info["features"], set(all_keys) - set(keys)),
        chunks_size=int(info.get("chunks_size") or 1000),
        base_info=info,
    )
    writer.tasks = dict(tasks)
    data_path = info.get("data_path") or V3_DATA_PATH
    video_path = info.get("video_path") or V3_VIDEO_PATH
    cached: tuple[Path, pa.Table] | None = None
    methods: dict[str, int] = {}
    for e in episodes:
        dpath = src / data_path.format(chunk_index=e.data_chunk, file_index=e.data_file)
        if cached is None or cached[0] != dpath:  # one data file in memory: episodes are in file order
            cached = (dpath, pq.read_table(dpath))
        table = cached[1]
        part = table.filter(pc.equal(table.column("episode_index"), e.index))
        writer.add_episode(part, e.tasks, stats=stats.get(e.index))
        for key in keys:
            how = _cut(src, dest, video_path, e, key, writer.chunks_size)
            methods[how] = methods.get(how, 0) + 1
    writer.finish(compute_dataset_stats=False)
    _copy_meta(src, dest)
    log.info("v3 -> v2.1 videos: %s", methods)
    return dest


def _cut(src: Path, dest: Path, video_path: str, e: V3Episode, key: str, chunks_size: int) -> str:
    span = e.videos[key]
    vsrc = src / video_path.format(video_key=key, chunk_index=span.chunk, file_index=span.file)
    return cut_video(vsrc, video_file(dest, key, e.index, chunks_size), span.from_s, span.to_s)


# -- entry points ------------------------------------------------------------------------------


def _copy_meta(src: Path, dest: Path) -> None:
    for name in COPY_META:
        if (src / "meta" / name).exists():
            shutil.copy2(src / "meta" / name, dest / "meta" / name)


def convert(src: str | Path, dest: str | Path, target_version: str = "v2.1") -> Path:
    """Convert src into the new folder dest (v3.0 -> v2.1 or v2.x -> v3.0); src is only read.

    dest is written under a temp name beside it and renamed when complete."""
    src, dest = Path(src).expanduser().resolve(), Path(dest).expanduser().resolve()
    if dest == src or src in dest.parents:
        raise ValueError("tools.output must be a new directory outside the source dataset")
    version = str(read_info(src).get("codebase_version", ""))
    if target_version.startswith("v3"):
        if version.startswith("v3"):
            raise ValueError(
                f"{src} is already {version}: nothing to convert (use tools.target_version=v2.1)"
            )
        step = v2_to_v3
    elif target_version in ("v2.1", "v2.0", "v2"):
        if not version.startswith("v3"):
            raise ValueError(
                f"{src} is already {version}: nothing to convert (use tools.target_version=v3.0)"
            )
        step = v3_to_v2
    else:
        raise ValueError(f"tools.target_version={target_version!r}: use v2.1 or v3.0")
    with staged_dir(dest) as tmp:
        step(src, tmp)
    return dest


def run(cfg: Any) -> int:
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
