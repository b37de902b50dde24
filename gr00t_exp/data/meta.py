"""Dataset metadata of a GR00T-flavoured LeRobot dataset (v2.0 / v2.1; v3.0 via mode=convert).

`load_meta(root)` reads meta/info.json, episodes.jsonl, tasks.jsonl, modality.json (or builds a
default), stats.json and (v2.1) episodes_stats.jsonl, checks the modality layout against info.json
and the files on disk, and raises `DatasetError` (file, key, fix) on anything that would break
later. It never writes into the dataset.
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

log = logging.getLogger(__name__)

INFO_FILE = "meta/info.json"
EPISODES_FILE = "meta/episodes.jsonl"
TASKS_FILE = "meta/tasks.jsonl"
STATS_FILE = "meta/stats.json"
EPISODES_STATS_FILE = "meta/episodes_stats.jsonl"
SUPPORTED_VERSIONS = ("v2.0", "v2.1")
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
    columns: list[str] = field(default_factory=list)  # parquet columns (first episode's schema)
    warnings: list[Issue] = field(default_factory=list)  # non-fatal findings of load_meta
    issues: list[Issue] = field(default_factory=list)  # all findings (errors too, with strict=False)

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
        raise KeyError(f"episode {episode_index} is not in {self.root / EPISODES_FILE}")

    def parquet_path(self, episode_index: int) -> Path:
        template = self.info.get("data_path") or DEFAULT_DATA_PATH
        rel = template.format(episode_chunk=episode_index // self.chunks_size, episode_index=episode_index)
        return self.root / rel

    def video_path(self, episode_index: int, original_key: str) -> Path:
        template = self.info.get("video_path") or DEFAULT_VIDEO_PATH
        rel = template.format(
            episode_chunk=episode_index // self.chunks_size,
            video_key=original_key,
            episode_index=episode_index,
        )
        return self.root / rel

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
                    f"restore it, or remove episode {episode_index} from {EPISODES_FILE}",
                )
            )
        try:
            return pq.read_table(path, columns=columns)
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
            raise DatasetError(
                error(
                    "parquet.corrupt",
                    self.rel(path),
                    f"episode {episode_index}",
                    f"cannot read parquet (truncated or corrupt: {e})",
                    f"re-export the episode, or remove episode {episode_index} from {EPISODES_FILE}",
                )
            ) from None

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
    lang = getattr(embodiment, "language_key", None)
    if lang:
        short = str(lang).removeprefix("annotation.")
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
        supplies the layout of a dataset without modality.json; the dataset tools do this).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(
            error(
                "dataset.missing",
                str(root),
                "",
                "dataset directory not found",
                "point tools.dataset / data.sources[0].path at an existing dataset root",
            )
        )
    root = root.resolve()
    info = read_info(root)
    version = str(info.get("codebase_version", ""))
    if (
        version.startswith("v3")
        or (root / "meta" / "episodes").is_dir()
        and not (root / EPISODES_FILE).exists()
    ):
        raise DatasetError(
            error(
                "version.v3",
                INFO_FILE,
                "codebase_version",
                f"LeRobot {version or 'v3'} layout (many episodes per file) is read through conversion",
                f"run: python run.py mode=convert tools.dataset={root} tools.output=<new dir> "
                "tools.target_version=v2.1, then use the new dir",
            )
        )
    issues: list[Issue] = []
    if version not in SUPPORTED_VERSIONS:
        issues.append(
            warning(
                "version.unknown",
                INFO_FILE,
                "codebase_version",
                f"codebase_version {version!r} is not v2.0/v2.1; reading it as v2.1",
                "set codebase_version to the LeRobot version the dataset was written with",
            )
        )
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
    if not episodes:
        raise DatasetError(error("meta.empty", EPISODES_FILE, "", "no episodes listed", "list the episodes"))
    seen: set[int] = set()
    for e in episodes:
        if e.index in seen:
            raise DatasetError(
                error(
                    "meta.duplicate", EPISODES_FILE, f"episode_index {e.index}", "listed twice", "remove one"
                )
            )
        seen.add(e.index)
    task_rows = _read_jsonl(
        root,
        TASKS_FILE,
        required_keys=("task_index", "task"),
        fix_missing="write meta/tasks.jsonl with one {task_index, task} per task",
    )
    tasks = {int(r["task_index"]): str(r["task"]) for r in task_rows}

    episodes_stats = None
    if (root / EPISODES_STATS_FILE).exists():
        es_rows = _read_jsonl(
            root, EPISODES_STATS_FILE, required_keys=("episode_index", "stats"), fix_missing=""
        )
        episodes_stats = {int(r["episode_index"]): r["stats"] for r in es_rows}

    meta = DatasetMeta(
        root=root,
        info=info,
        version=version if version in SUPPORTED_VERSIONS else "v2.1",
        fps=fps,
        episodes=episodes,
        tasks=tasks,
        modality=Modality(),
        stats=None,
        episodes_stats=episodes_stats,
    )
    # Schema of the first episode: column names for the annotation / column checks.
    first = meta.parquet_path(episodes[0].index)
    if first.exists():
        try:
            meta.columns = list(pq.read_schema(first).names)
        except (pa.ArrowInvalid, OSError) as e:
            issues.append(
                error(
                    "parquet.corrupt",
                    meta.rel(first),
                    f"episode {episodes[0].index}",
                    f"cannot read parquet (truncated or corrupt: {e})",
                    f"re-export the episode, or remove episode {episodes[0].index} from {EPISODES_FILE}",
                )
            )

    if (root / MODALITY_FILE).exists():
        meta.modality = read_modality_file(root / MODALITY_FILE)
        meta.modality_source = "file"
    else:
        emb_mod = _embodiment_modality(embodiment)
        if emb_mod is not None:
            src = f"conf/embodiment/{getattr(embodiment, 'name', '?')}.yaml: modality"
            meta.modality = parse_modality(emb_mod, src)
            meta.modality_source = "embodiment"
            how = f"the layout from embodiment {getattr(embodiment, 'name', '?')!r}"
        else:
            first_ep = episodes[0].index
            meta.modality = default_modality(
                info, meta.columns or None, has_video=lambda k: meta.video_path(first_ep, k).exists()
            )
            meta.modality_source = "generated"
            how = "a generated default (one key per state/action column)"
        w = warning(
            "modality.missing",
            MODALITY_FILE,
            "",
            f"no modality.json; using {how}",
            "write meta/modality.json (python run.py mode=derive_embodiment shows the layout in use)",
        )
        log.warning("%s: %s", root, w)
        issues.append(w)

    missing_parquet: list[str] = []
    if check_files:
        for e in episodes:
            p = meta.parquet_path(e.index)
            if not p.exists():
                missing_parquet.append(meta.rel(p))
        if missing_parquet:
            shown = ", ".join(missing_parquet[:3]) + (" ..." if len(missing_parquet) > 3 else "")
            issues.append(
                error(
                    "parquet.missing",
                    shown,
                    "",
                    f"{len(missing_parquet)} episode parquet file(s) listed in {EPISODES_FILE} are missing",
                    "restore them, or remove those episodes from meta/episodes.jsonl",
                )
            )

    def video_missing(original_key: str) -> list[str]:
        return [
            meta.rel(meta.video_path(e.index, original_key))
            for e in episodes
            if not meta.video_path(e.index, original_key).exists()
        ]

    issues += check_modality(
        meta.modality,
        info,
        source=MODALITY_FILE if meta.modality_source == "file" else f"{MODALITY_FILE} (default)",
        columns=meta.columns or None,
        video_exists=video_missing if check_files else None,
    )
    if (
        check_embodiment
        and embodiment is not None
        and (getattr(embodiment, "state_keys", None) or getattr(embodiment, "video_keys", None))
    ):
        issues += check_embodiment_keys(meta.modality, embodiment, MODALITY_FILE)

    if (root / STATS_FILE).exists():
        try:
            stats = json.loads((root / STATS_FILE).read_text())
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

    errors = [i for i in issues if i.severity == "error"]
    meta.issues = issues
    meta.warnings = [i for i in issues if i.severity != "error"]
    if strict and errors:
        raise DatasetError(errors)
    return meta
