"""The episode index of a LeRobot v3.0 dataset, read in place (no conversion).

v3.0 stores many episodes per file: `data/chunk-CCC/file-FFF.parquet` holds consecutive episodes'
rows, `videos/<key>/chunk-CCC/file-FFF.mp4` their frames back to back, and
`meta/episodes/chunk-*/file-*.parquet` says, per episode, which data file and rows
(`dataset_from_index` / `dataset_to_index`, global row numbers) and, per camera, which mp4 and
time span (`from_timestamp` / `to_timestamp`) belong to it. Parquet timestamps restart at 0 in
every episode, so a row's frame plays at `from_timestamp + timestamp` in the chunk's mp4.
`meta/tasks.parquet` has the task text as its (pandas) index and a `task_index` column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq

from gr00t_exp.data.errors import DatasetError, error

EPISODES_DIR = "meta/episodes"
TASKS_PARQUET = "meta/tasks.parquet"
V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
_REQUIRED = ("episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index")


@dataclass(frozen=True)
class VideoSpan:
    """Where one episode's frames of one camera are: an mp4 and the time span inside it."""

    chunk: int
    file: int
    from_s: float
    to_s: float


@dataclass
class V3Episode:
    index: int
    length: int
    tasks: list[str]
    data_chunk: int
    data_file: int
    from_index: int  # global row number of the episode's first row
    to_index: int  # one past its last row
    file_row: int = 0  # row of the episode's first row inside its data file
    videos: dict[str, VideoSpan] = field(default_factory=dict)


def is_v3(root: Path, info: dict) -> bool:
    """A v3.0 layout: declared so, or an episodes folder without episodes.jsonl."""
    version = str(info.get("codebase_version", ""))
    return version.startswith("v3") or (
        (root / EPISODES_DIR).is_dir() and not (root / "meta" / "episodes.jsonl").exists()
    )


def _read_parquet(root: Path, rel: Path | str, columns: Optional[list[str]] = None) -> pa.Table:
    try:
        return pq.read_table(root / rel, columns=columns)
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetError(
            error(
                "meta.parquet",
                str(rel),
                "",
                f"cannot read parquet (truncated or corrupt: {e})",
                "restore the file from the original dataset (LeRobot writes it at the end of recording)",
            )
        ) from None


def read_v3_episodes(root: Path) -> list[V3Episode]:
    """Every episode's files and spans from meta/episodes/**.parquet, sorted by episode index."""
    files = sorted((root / EPISODES_DIR).rglob("*.parquet"))
    if not files:
        raise DatasetError(
            error(
                "meta.missing",
                f"{EPISODES_DIR}/",
                "",
                "no episode metadata parquet files (a v3.0 dataset lists its episodes there)",
                "restore meta/episodes/ from the original dataset",
            )
        )
    episodes: list[V3Episode] = []
    for f in files:
        rel = f.relative_to(root)
        # The per-episode statistics columns (stats/...) are many and unused here: skip them.
        names = [n for n in _schema_names(root, rel) if not n.startswith("stats/")]
        missing = [k for k in _REQUIRED if k not in names]
        if missing:
            raise DatasetError(
                error(
                    "meta.schema",
                    str(rel),
                    ", ".join(missing),
                    "required episode column(s) missing",
                    "restore the file; LeRobot v3.0 writes episode_index, length, data/chunk_index, "
                    "data/file_index, dataset_from_index and dataset_to_index",
                )
            )
        for row in _read_parquet(root, rel, names).to_pylist():
            episodes.append(_episode_from_row(row, names))
    episodes.sort(key=lambda e: e.index)
    _file_rows(episodes)
    return episodes


def _schema_names(root: Path, rel: Path) -> list[str]:
    try:
        return list(pq.read_schema(root / rel).names)
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetError(
            error(
                "meta.parquet",
                str(rel),
                "",
                f"cannot read parquet (truncated or corrupt: {e})",
                "restore the file from the original dataset",
            )
        ) from None


def _episode_from_row(row: dict, names: list[str]) -> V3Episode:
    length = int(row["length"])
    start = int(row["dataset_from_index"])
    stop = int(row["dataset_to_index"]) if row.get("dataset_to_index") is not None else start + length
    videos: dict[str, VideoSpan] = {}
    for n in names:
        if n.startswith("videos/") and n.endswith("/from_timestamp"):
            key = n[len("videos/") : -len("/from_timestamp")]
            videos[key] = VideoSpan(
                chunk=int(row.get(f"videos/{key}/chunk_index") or 0),
                file=int(row.get(f"videos/{key}/file_index") or 0),
                from_s=float(row[n]),
                to_s=float(row.get(f"videos/{key}/to_timestamp") or 0.0),
            )
    tasks = row.get("tasks") or []
    return V3Episode(
        index=int(row["episode_index"]),
        length=length,
        tasks=[str(t) for t in (tasks if isinstance(tasks, list) else [tasks])],
        data_chunk=int(row["data/chunk_index"]),
        data_file=int(row["data/file_index"]),
        from_index=start,
        to_index=stop,
        videos=videos,
    )


def _file_rows(episodes: list[V3Episode]) -> None:
    """Row offset of each episode inside its data file: a file starts at its first episode's row."""
    first: dict[tuple[int, int], int] = {}
    for e in episodes:
        k = (e.data_chunk, e.data_file)
        first[k] = min(first.get(k, e.from_index), e.from_index)
    for e in episodes:
        e.file_row = e.from_index - first[(e.data_chunk, e.data_file)]


def read_v3_tasks(root: Path) -> dict[int, str]:
    """task_index -> text from meta/tasks.parquet (the text is the pandas index, or a `task` column)."""
    if not (root / TASKS_PARQUET).exists():
        raise DatasetError(
            error(
                "meta.missing",
                TASKS_PARQUET,
                "",
                f"file not found under {root}",
                "restore meta/tasks.parquet (task_index and the task text) from the original dataset",
            )
        )
    table = _read_parquet(root, TASKS_PARQUET)
    text_col = "task" if "task" in table.column_names else _pandas_index_column(table)
    if "task_index" not in table.column_names or text_col is None:
        raise DatasetError(
            error(
                "meta.schema",
                TASKS_PARQUET,
                "",
                f"expected a task_index column and the task text (has: {', '.join(table.column_names)})",
                "restore the file; LeRobot v3.0 stores the text as the index and task_index as a column",
            )
        )
    idx = table.column("task_index").to_pylist()
    text = table.column(text_col).to_pylist()
    return {int(i): str(t) for i, t in zip(idx, text, strict=True)}


def _pandas_index_column(table: pa.Table) -> Optional[str]:
    """The column pandas stored its (string) index in, from the schema's pandas metadata."""
    raw = (table.schema.metadata or {}).get(b"pandas")
    if raw:
        cols = json.loads(raw).get("index_columns") or []
        named = [c for c in cols if isinstance(c, str) and c in table.column_names]
        if named:
            return named[0]
    strings = [
        n
        for n in table.column_names
        if pa.types.is_string(table.schema.field(n).type)
        or pa.types.is_large_string(table.schema.field(n).type)
    ]
    return strings[0] if strings else None


def read_rows(path: Path, start: int, stop: int, columns: Optional[list[str]] = None) -> pa.Table:
    """Rows [start, stop) of a parquet file, reading only the row groups that hold them."""
    pf = pq.ParquetFile(path)
    groups: list[int] = []
    first_row = None
    pos = 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if pos < stop and pos + n > start:
            groups.append(g)
            first_row = pos if first_row is None else first_row
        pos += n
    if not groups:
        return pf.schema_arrow.empty_table().select(columns) if columns else pf.schema_arrow.empty_table()
    table = pf.read_row_groups(groups, columns=columns)
    return table.slice(start - int(first_row or 0), stop - start)
