"""Dataset metadata of a GR00T-flavoured LeRobot dataset (v2.0 / v2.1 / v3.0, read in place).

`load_meta(root)` reads meta/info.json, the episode and task lists (v2: episodes.jsonl,
tasks.jsonl; v3.0: meta/episodes/*.parquet, meta/tasks.parquet), modality.json (or builds a
default), stats.json and (v2.1) episodes_stats.jsonl, checks the modality layout against info.json
and the files on disk, and raises `DatasetError` (file, key, fix) on anything that would break
later. It never writes into the dataset. The rest of the project reads episodes only through
`DatasetMeta` (parquet_path / video_path / video_span / read_table), so v3.0's many-episodes-per-file
layout is invisible above this module.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gr00t_exp.data.errors import DatasetError, Issue, error, warning
from gr00t_exp.data.modality import (
    MODALITY_FILE,
    Modality,
    check_modality,
    default_modality,
    parse_modality,
    read_modality_file,
)
from gr00t_exp.data.v3_index import (
    EPISODES_DIR,
    V3_DATA_PATH,
    V3_VIDEO_PATH,
    V3Episode,
    is_v3,
    read_rows,
    read_v3_episodes,
    read_v3_tasks,
)
from gr00t_exp.embodiment.keys import bare

log = logging.getLogger(__name__)

INFO_FILE = "meta/info.json"
EPISODES_FILE = "meta/episodes.jsonl"
TASKS_FILE = "meta/tasks.jsonl"
STATS_FILE = "meta/stats.json"
EPISODES_STATS_FILE = "meta/episodes_stats.jsonl"
SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")
DEFAULT_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
DEFAULT_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


@dataclass
class EpisodeInfo:
    index: int
    length: int
    tasks: list[str]


@dataclass
class DatasetMeta:
    root: Path
    info: dict
    version: str
    fps: float
    episodes: list[EpisodeInfo]
    tasks: dict[int, str]
    modality: Modality
    stats: Optional[dict]
    # Where the modality came from: "file" | "embodiment" | "generated".
    modality_source: str = "file"
    episodes_stats: Optional[dict[int, dict]] = None
    # v3.0 only: where each episode's rows and frames are inside the shared files.
    v3_episodes: Optional[dict[int, V3Episode]] = None
    columns: list[str] = field(default_factory=list)  # parquet columns (first episode's schema)
    warnings: list[Issue] = field(default_factory=list)  # non-fatal findings of load_meta
    issues: list[Issue] = field(default_factory=list)  # all findings (errors too, with strict=False)

    @property
    def is_v3(self) -> bool:
        return self.v3_episodes is not None

    @property
    def episodes_file(self) -> str:
        """The file listing the episodes (named in error messages)."""
        return f"{EPISODES_DIR}/" if self.is_v3 else EPISODES_FILE

    @property
    def chunks_size(self) -> int:
        return int(self.info.get("chunks_size") or 1000)

    @property
    def total_frames(self) -> int:
        return sum(e.length for e in self.episodes)

    @property
    def episode_indices(self) -> list[int]:
        return [e.index for e in self.episodes]

    def episode(self, episode_index: int) -> EpisodeInfo:
        for e in self.episodes:
            if e.index == episode_index:
                return e
        raise KeyError(f"episode {episode_index} is not in {self.root / self.episodes_file}")

    def parquet_path(self, episode_index: int) -> Path:
        """The parquet file holding the episode's rows (v3.0: shared with other episodes)."""
        if self.v3_episodes is not None:
            e = self._v3(episode_index)
            template = self.info.get("data_path") or V3_DATA_PATH
            return self.root / template.format(chunk_index=e.data_chunk, file_index=e.data_file)
        template = self.info.get("data_path") or DEFAULT_DATA_PATH
        rel = template.format(episode_chunk=episode_index // self.chunks_size, episode_index=episode_index)
        return self.root / rel

    def video_path(self, episode_index: int, original_key: str) -> Path:
        """The mp4 holding the episode's frames of one camera (v3.0: shared, see `video_span`)."""
        if self.v3_episodes is not None:
            span = self._v3(episode_index).videos.get(original_key)
            template = self.info.get("video_path") or V3_VIDEO_PATH
            chunk, file = (span.chunk, span.file) if span is not None else (0, 0)
            return self.root / template.format(video_key=original_key, chunk_index=chunk, file_index=file)
        template = self.info.get("video_path") or DEFAULT_VIDEO_PATH
        rel = template.format(
            episode_chunk=episode_index // self.chunks_size,
            video_key=original_key,
            episode_index=episode_index,
        )
        return self.root / rel

    def video_span(self, episode_index: int, original_key: str) -> Optional[tuple[float, float]]:
        """(from_s, to_s) of the episode inside its mp4 (v3.0); None when the file is the episode's own.

        A row's frame plays at `from_s + timestamp`."""
        if self.v3_episodes is None:
            return None
        span = self._v3(episode_index).videos.get(original_key)
        return (span.from_s, span.to_s) if span is not None else None

    def _v3(self, episode_index: int) -> V3Episode:
        assert self.v3_episodes is not None
        e = self.v3_episodes.get(episode_index)
        if e is None:
            raise KeyError(f"episode {episode_index} is not in {self.root / EPISODES_DIR}")
        return e

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def read_table(self, episode_index: int, columns: Optional[list[str]] = None) -> pa.Table:
        path = self.parquet_path(episode_index)
        if not path.exists():
            raise DatasetError(
                error(
                    "parquet.missing",
                    self.rel(path),
                    f"episode {episode_index}",
                    "parquet file is missing",
                    f"restore it, or remove episode {episode_index} from {self.episodes_file}",
                )
            )
        try:
            if self.v3_episodes is not None:
                return self._read_v3_rows(episode_index, path, columns)
            return pq.read_table(path, columns=columns)
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
            raise DatasetError(
                error(
                    "parquet.corrupt",
                    self.rel(path),
                    f"episode {episode_index}",
                    f"cannot read parquet (truncated or corrupt: {e})",
                    f"re-export the episode, or remove episode {episode_index} from {self.episodes_file}",
                )
            ) from None

    def _read_v3_rows(self, episode_index: int, path: Path, columns: Optional[list[str]]) -> pa.Table:
        """The episode's rows of a shared v3.0 file, checked against its episode_index column
        (a stale dataset_from_index would otherwise hand out another episode's rows silently)."""
        e = self._v3(episode_index)
        has_index = "episode_index" in self.columns
        wanted = columns
        if columns is not None and has_index and "episode_index" not in columns:
            wanted = [*columns, "episode_index"]
        table = read_rows(path, e.file_row, e.file_row + e.length, wanted)
        if has_index:
            got = table.column("episode_index").to_numpy(zero_copy_only=False)
            if len(got) != e.length or (got != episode_index).any():
                others = sorted(set(got.tolist()) - {episode_index})[:3]
                raise DatasetError(
                    error(
                        "parquet.rows",
                        self.rel(path),
                        f"episode {episode_index}",
                        f"rows {e.file_row}-{e.file_row + e.length} of this file are {len(got)} rows"
                        + (f" including episode(s) {others}" if others else "")
                        + f", but {EPISODES_DIR} says {e.length} rows of episode {episode_index} there",
                        "restore meta/episodes/ from the original dataset (its dataset_from_index / "
                        "length no longer match the data files)",
                    )
                )
            if columns is not None and "episode_index" not in columns:
                table = table.drop(["episode_index"])
        return table

    def read_episode(self, episode_index: int, columns: Optional[list[str]] = None) -> dict[str, np.ndarray]:
        """Column -> array with rows first; list columns become 2-D (rows, width)."""
        return table_to_numpy(self.read_table(episode_index, columns))


def table_to_numpy(table: pa.Table) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if (
            pa.types.is_list(col.type)
            or pa.types.is_large_list(col.type)
            or pa.types.is_fixed_size_list(col.type)
        ):
            flat = col.flatten().to_numpy(zero_copy_only=False)
            n = len(col)
            out[name] = flat.reshape(n, -1) if n else flat.reshape(0, 0)
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


def _read_json(root: Path, rel: str, *, fix_missing: str) -> Any:
    path = root / rel
    if not path.exists():
        raise DatasetError(error("meta.missing", rel, "", f"file not found under {root}", fix_missing))
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(
            error(
                "meta.json",
                rel,
                "",
                f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
                "fix the JSON syntax (a truncated file: restore it from the original dataset)",
            )
        ) from None


def _read_jsonl(root: Path, rel: str, *, required_keys: tuple[str, ...], fix_missing: str) -> list[dict]:
    path = root / rel
    if not path.exists():
        raise DatasetError(error("meta.missing", rel, "", f"file not found under {root}", fix_missing))
    rows: list[dict] = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(
                error(
                    "meta.jsonl",
                    rel,
                    f"line {n}",
                    f"not valid JSON ({e.msg} at column {e.colno})",
                    "write one JSON object per line (JSON Lines); fix or restore this line",
                )
            ) from None
        if isinstance(row, list):
            raise DatasetError(
                error(
                    "meta.jsonl",
                    rel,
                    f"line {n}",
                    "found a JSON array; the file must be JSON Lines (one object per line)",
                    "write each element of the array on its own line",
                )
            )
        missing = [k for k in required_keys if not isinstance(row, dict) or k not in row]
        if missing:
            raise DatasetError(
                error(
                    "meta.jsonl",
                    rel,
                    f"line {n}",
                    f"missing key(s) {', '.join(missing)}",
                    f"each line needs {', '.join(required_keys)}",
                )
            )
        rows.append(row)
    return rows


def read_info(root: Path) -> dict:
    info = _read_json(
        root,
        INFO_FILE,
        fix_missing=(
            "point tools.dataset / data.sources at the dataset root (the folder holding meta/, data/, "
            "videos/); a LeRobot dataset always has meta/info.json"
        ),
    )
    if not isinstance(info, dict):
        raise DatasetError(error("info.schema", INFO_FILE, "", "expected a JSON object", "restore info.json"))
    return info


def _embodiment_modality(embodiment: Any) -> Optional[dict]:
    if embodiment is None:
        return None
    mod = getattr(embodiment, "modality", None)
    if mod is None and isinstance(embodiment, dict):
        mod = embodiment.get("modality")
    if mod is None:
        return None
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(mod, DictConfig):
            mod = OmegaConf.to_container(mod, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a hard dependency
        pass
    return dict(mod)


def check_embodiment_keys(modality: Modality, embodiment: Any, source: str) -> list[Issue]:
    """Every key the embodiment config uses must exist in the dataset's modality."""
    issues: list[Issue] = []
    name = getattr(embodiment, "name", "?")
    groups = {
        "video_keys": "video",
        "state_keys": "state",
        "action_keys": "action",
    }
    for field_name, group in groups.items():
        for key in list(getattr(embodiment, field_name, None) or []):
            prefix, _, short = str(key).partition(".")
            if prefix != group:
                issues.append(
                    error(
                        "embodiment.key",
                        f"conf/embodiment/{name}.yaml",
                        f"{field_name}: {key}",
                        f"key must start with '{group}.'",
                        f"write it as {group}.{short or key}",
                    )
                )
                continue
            if short not in getattr(modality, group):
                have = ", ".join(modality.prefixed_keys(group)) or "(none)"
                issues.append(
                    error(
                        "embodiment.key",
                        source,
                        f"{key}",
                        f"embodiment {name!r} uses {key} but the dataset's modality has no such key (has: {have})",
                        "choose the matching embodiment (embodiment=...), or add the key to modality.json",
                    )
                )
    issues += _check_discrete_normalization(modality, embodiment, source)
    lang = getattr(embodiment, "language_key", None)
    if lang:
        short = bare(lang, "annotation")
        if modality.annotation and short not in modality.annotation:
            have = ", ".join(modality.prefixed_keys("annotation"))
            issues.append(
                error(
                    "embodiment.key",
                    source,
                    str(lang),
                    f"embodiment {name!r} uses language key {lang} but the dataset has only: {have}",
                    f"set embodiment.language_key to one of: {have}",
                )
            )
    return issues


def _check_discrete_normalization(modality: Modality, embodiment: Any, source: str) -> list[Issue]:
    """A key whose modality `dtype` is not a float is discrete: as upstream, only `binary`
    normalisation applies to it (min-max of a 0/1 gripper flag would be fine, of an enum not)."""
    issues: list[Issue] = []
    name = getattr(embodiment, "name", "?")
    for group in ("state", "action"):
        modes = dict(getattr(embodiment, f"{group}_normalization", None) or {})
        for key, mode in modes.items():
            spec = getattr(modality, group).get(bare(key, group))
            if spec is not None and not spec.is_continuous and mode != "binary":
                issues.append(
                    error(
                        "embodiment.normalization",
                        source,
                        str(key),
                        f"dtype {spec.dtype!r} (not a float) is discrete, but embodiment {name!r} "
                        f"normalises it with {mode}",
                        f"set {group}_normalization.{key}: binary, or give the key a float dtype in modality.json",
                    )
                )
    return issues


def load_meta(
    root: str | Path,
    embodiment: Any = None,
    *,
    check_files: bool = True,
    strict: bool = True,
    check_embodiment: bool = True,
) -> DatasetMeta:
    """Read and check a dataset's metadata.

    embodiment: an EmbodimentConfig (dataclass or DictConfig); its `modality` is used when the
        dataset has no modality.json, and its keys are checked against the dataset's modality.
    check_files: check that every episode's parquet and video files exist (cheap `stat`s).
    strict: raise DatasetError on errors (False: collect them in `meta.issues` for mode=validate).
    check_embodiment: check the embodiment's keys against the modality (False: the embodiment only
        supplies the layout of a dataset without modality.json).
    """
    root = _dataset_dir(root)
    info = read_info(root)
    fps = _check_info(info)
    issues: list[Issue] = []
    meta = _read_episode_index(root, info, fps, issues)
    meta.columns = _first_schema(meta, issues)
    _resolve_modality(meta, embodiment, issues)
    if check_files:
        issues += _missing_parquets(meta)
    issues += check_modality(
        meta.modality,
        info,
        source=MODALITY_FILE if meta.modality_source == "file" else f"{MODALITY_FILE} (default)",
        columns=meta.columns or None,
        video_exists=(lambda key: _missing_videos(meta, key)) if check_files else None,
    )
    if (
        check_embodiment
        and embodiment is not None
        and (getattr(embodiment, "state_keys", None) or getattr(embodiment, "video_keys", None))
    ):
        issues += check_embodiment_keys(meta.modality, embodiment, MODALITY_FILE)
    _read_stats(meta, issues)

    errors = [i for i in issues if i.severity == "error"]
    meta.issues = issues
    meta.warnings = [i for i in issues if i.severity != "error"]
    if strict and errors:
        raise DatasetError(errors)
    return meta


def _dataset_dir(root: str | Path) -> Path:
    """The resolved dataset root; a missing path or a file gets its own message and fix."""
    path = Path(root).expanduser()
    if path.is_file():
        raise DatasetError(
            error(
                "dataset.not_dir",
                str(path),
                "",
                "this is a file, not a dataset directory",
                f"point tools.dataset / data.sources[0].path at the dataset root (the folder holding "
                f"meta/info.json), e.g. {_guess_root(path)}",
            )
        )
    if not path.is_dir():
        raise DatasetError(
            error(
                "dataset.missing",
                str(path),
                "",
                "dataset directory not found",
                "point tools.dataset / data.sources[0].path at an existing dataset root",
            )
        )
    return path.resolve()


def _guess_root(file: Path) -> str:
    """The nearest parent holding meta/info.json (a file inside a dataset), else the file's folder."""
    for parent in file.resolve().parents:
        if (parent / INFO_FILE).is_file():
            return str(parent)
    return str(file.parent)


def _check_info(info: dict) -> float:
    """fps and features are required; returns fps."""
    for k in ("fps", "features"):
        if k not in info:
            raise DatasetError(
                error("info.schema", INFO_FILE, k, "required key missing", f"add {k!r} to info.json")
            )
    try:
        fps = float(info["fps"])
        if fps <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise DatasetError(
            error(
                "info.schema",
                INFO_FILE,
                "fps",
                f"fps must be a positive number, got {info['fps']!r}",
                "fix fps",
            )
        ) from None
    if not isinstance(info["features"], dict):
        raise DatasetError(
            error(
                "info.schema", INFO_FILE, "features", "must be an object column -> {dtype, shape}", "fix it"
            )
        )
    return fps


def _read_episode_index(root: Path, info: dict, fps: float, issues: list[Issue]) -> DatasetMeta:
    """Episodes, tasks and per-episode stats: v3.0's parquet index, or v2's JSON Lines files."""
    version = str(info.get("codebase_version", ""))
    if is_v3(root, info):
        v3 = read_v3_episodes(root)
        episodes = [EpisodeInfo(e.index, e.length, e.tasks) for e in v3]
        _check_episode_list(episodes, f"{EPISODES_DIR}/")
        return DatasetMeta(
            root=root,
            info=info,
            version="v3.0",
            fps=fps,
            episodes=episodes,
            tasks=read_v3_tasks(root),
            modality=Modality(),
            stats=None,
            v3_episodes={e.index: e for e in v3},
        )
    if version not in SUPPORTED_VERSIONS:
        issues.append(
            warning(
                "version.unknown",
                INFO_FILE,
                "codebase_version",
                f"codebase_version {version!r} is not v2.0/v2.1/v3.0; reading it as v2.1",
                "set codebase_version to the LeRobot version the dataset was written with",
            )
        )
    rows = _read_jsonl(
        root,
        EPISODES_FILE,
        required_keys=("episode_index", "length"),
        fix_missing="write meta/episodes.jsonl with one {episode_index, tasks, length} per episode",
    )
    episodes = [
        EpisodeInfo(index=int(r["episode_index"]), length=int(r["length"]), tasks=list(r.get("tasks") or []))
        for r in rows
    ]
    _check_episode_list(episodes, EPISODES_FILE)
    task_rows = _read_jsonl(
        root,
        TASKS_FILE,
        required_keys=("task_index", "task"),
        fix_missing="write meta/tasks.jsonl with one {task_index, task} per task",
    )
    episodes_stats = None
    if (root / EPISODES_STATS_FILE).exists():
        es_rows = _read_jsonl(
            root, EPISODES_STATS_FILE, required_keys=("episode_index", "stats"), fix_missing=""
        )
        episodes_stats = {int(r["episode_index"]): r["stats"] for r in es_rows}
    return DatasetMeta(
        root=root,
        info=info,
        version=version if version in SUPPORTED_VERSIONS else "v2.1",
        fps=fps,
        episodes=episodes,
        tasks={int(r["task_index"]): str(r["task"]) for r in task_rows},
        modality=Modality(),
        stats=None,
        episodes_stats=episodes_stats,
    )


def _check_episode_list(episodes: list[EpisodeInfo], source: str) -> None:
    if not episodes:
        raise DatasetError(error("meta.empty", source, "", "no episodes listed", "list the episodes"))
    seen: set[int] = set()
    for e in episodes:
        if e.index in seen:
            raise DatasetError(
                error("meta.duplicate", source, f"episode_index {e.index}", "listed twice", "remove one")
            )
        seen.add(e.index)


def _first_schema(meta: DatasetMeta, issues: list[Issue]) -> list[str]:
    """Column names of the first episode's parquet (they drive the annotation / column checks)."""
    first = meta.parquet_path(meta.episodes[0].index)
    if not first.exists():
        return []
    try:
        return list(pq.read_schema(first).names)
    except (pa.ArrowInvalid, OSError) as e:
        issues.append(
            error(
                "parquet.corrupt",
                meta.rel(first),
                f"episode {meta.episodes[0].index}",
                f"cannot read parquet (truncated or corrupt: {e})",
                f"re-export the episode, or remove episode {meta.episodes[0].index} from {meta.episodes_file}",
            )
        )
        return []


def _resolve_modality(meta: DatasetMeta, embodiment: Any, issues: list[Issue]) -> None:
    """modality.json, else the embodiment's layout, else one derived from the dataset (warned)."""
    root = meta.root
    if (root / MODALITY_FILE).exists():
        meta.modality = read_modality_file(root / MODALITY_FILE)
        meta.modality_source = "file"
        return
    emb_mod = _embodiment_modality(embodiment)
    if emb_mod is not None:
        src = f"conf/embodiment/{getattr(embodiment, 'name', '?')}.yaml: modality"
        meta.modality = parse_modality(emb_mod, src)
        meta.modality_source = "embodiment"
        how = f"the layout from embodiment {getattr(embodiment, 'name', '?')!r}"
    else:
        first_ep = meta.episodes[0].index
        meta.modality = default_modality(
            meta.info, meta.columns or None, has_video=lambda k: meta.video_path(first_ep, k).exists()
        )
        meta.modality_source = "generated"
        how = "a layout derived from the dataset (one key per state/action column)"
    w = warning(
        "modality.missing",
        MODALITY_FILE,
        "",
        f"no modality.json; using {how}",
        "write meta/modality.json (python run.py mode=derive_embodiment shows the layout in use)",
    )
    log.warning("%s: %s", root, w)
    issues.append(w)


def _missing_parquets(meta: DatasetMeta) -> list[Issue]:
    missing = sorted({meta.rel(p) for e in meta.episodes if not (p := meta.parquet_path(e.index)).exists()})
    if not missing:
        return []
    shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
    return [
        error(
            "parquet.missing",
            shown,
            "",
            f"{len(missing)} parquet file(s) listed in {meta.episodes_file} are missing",
            f"restore them, or remove those episodes from {meta.episodes_file}",
        )
    ]


def _missing_videos(meta: DatasetMeta, original_key: str) -> list[str]:
    # v3.0 episodes share files: report each missing file once.
    seen: dict[str, None] = {}
    for e in meta.episodes:
        p = meta.video_path(e.index, original_key)
        if not p.exists():
            seen.setdefault(meta.rel(p))
    return list(seen)


def _read_stats(meta: DatasetMeta, issues: list[Issue]) -> None:
    """meta/stats.json when present; a corrupt one is a warning (statistics get recomputed)."""
    if not (meta.root / STATS_FILE).exists():
        return
    try:
        stats = json.loads((meta.root / STATS_FILE).read_text())
        meta.stats = stats if isinstance(stats, dict) else None
    except json.JSONDecodeError as e:
        issues.append(
            warning(
                "stats.json",
                STATS_FILE,
                "",
                f"not valid JSON ({e.msg}); statistics will be recomputed",
                "run python run.py mode=stats data.write_in_place=true to rewrite it",
            )
        )
