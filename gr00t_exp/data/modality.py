"""`meta/modality.json`: GR00T's slicing/renaming layer over LeRobot columns (pydantic schema + checks).

Layout (docs/upstream.md "Dataset layout")::

    {"state":  {"<key>": {"start": 0, "end": 7, "original_key"?, "absolute"?, "rotation_type"?,
                           "dtype"?, "range"?}},   # range: parsed, checked lo < hi, otherwise unused
     "action": {...same...},
     "video":  {"<name>": {"original_key": "observation.images.<name>"}},
     "annotation": {"<source.type>": {} | {"original_key": "<parquet column>"}}}

`parse_modality` turns a dict into a `Modality` (schema errors name the key and the fix);
`check_modality` checks it against info.json, the parquet columns and the files on disk and
returns a list of `Issue`s (errors and warnings) rather than raising, so `mode=validate` can
report them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gr00t_exp.data.errors import DatasetError, Issue, error, warning
from gr00t_exp.embodiment.keys import prefixed

MODALITY_FILE = "meta/modality.json"

# Width a slice must have for each rotation representation.
ROTATION_WIDTHS: dict[str, int] = {
    "quaternion": 4,
    "rotation_6d": 6,
    "matrix": 9,
    "axis_angle": 3,
    **{f"euler_angles_{o}": 3 for o in ("rpy", "ryp", "pry", "pyr", "yrp", "ypr")},
}
DEFAULT_ORIGINAL_KEY = {"state": "observation.state", "action": "action"}


class SliceSpec(BaseModel):
    """A state or action key: the python slice [start, end) of a concatenated column."""

    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    original_key: Optional[str] = None
    absolute: bool = True
    rotation_type: Optional[str] = None
    dtype: str = "float64"
    range: Optional[tuple[float, float]] = None

    @field_validator("rotation_type")
    @classmethod
    def _known_rotation(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v not in ROTATION_WIDTHS:
            raise ValueError(f"unknown rotation_type {v!r}; use one of {sorted(ROTATION_WIDTHS)}")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> SliceSpec:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be greater than start ({self.start})")
        return self

    @property
    def width(self) -> int:
        return self.end - self.start

    @property
    def is_continuous(self) -> bool:
        return self.dtype.startswith("float")


class VideoSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    original_key: str


class AnnotationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    original_key: Optional[str] = None


class Modality(BaseModel):
    """Parsed modality.json. Keys are short names (`left_arm`, `ego_view`, `human.action.task_description`)."""

    model_config = ConfigDict(extra="forbid")

    state: dict[str, SliceSpec] = Field(default_factory=dict)
    action: dict[str, SliceSpec] = Field(default_factory=dict)
    video: dict[str, VideoSpec] = Field(default_factory=dict)
    annotation: dict[str, AnnotationSpec] = Field(default_factory=dict)

    # -- resolved column names -------------------------------------------------------------
    def column(self, group: str, key: str) -> str:
        """The parquet column (or video feature) that `group.key` reads."""
        if group in ("state", "action"):
            spec: SliceSpec = getattr(self, group)[key]
            return spec.original_key or DEFAULT_ORIGINAL_KEY[group]
        if group == "video":
            return self.video[key].original_key
        if group == "annotation":
            return self.annotation[key].original_key or f"annotation.{key}"
        raise KeyError(group)

    def prefixed_keys(self, group: str) -> list[str]:
        """Keys in the embodiment-config form, e.g. `state.left_arm`."""
        return [prefixed(group, k) for k in getattr(self, group)]

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


def parse_modality(data: Any, source: str | Path = MODALITY_FILE) -> Modality:
    """Validate a modality dict; raise DatasetError naming every bad key and how to fix it."""
    if not isinstance(data, dict):
        raise DatasetError(
            error(
                "modality.schema",
                source,
                "",
                f"expected a JSON object with keys state/action/video/annotation, got {type(data).__name__}",
                "write modality.json as {'state': {...}, 'action': {...}, 'video': {...}, 'annotation': {...}}",
            )
        )
    try:
        return Modality.model_validate(data)
    except ValidationError as e:
        issues = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                fix = (
                    "remove the field or correct its spelling; allowed fields: top level "
                    "state/action/video/annotation; state/action entries start, end, original_key, "
                    "absolute, rotation_type, dtype, range; video entries original_key; annotation "
                    "entries original_key"
                )
            elif err["type"] == "missing":
                fix = "add the missing field (state/action entries need start and end; videos need original_key)"
            else:
                fix = "correct the value (start/end are integers with end > start; see docs/data.md)"
            issues.append(error("modality.schema", source, loc, msg, fix))
        raise DatasetError(issues) from None


def read_modality_file(path: Path, source: str = MODALITY_FILE) -> Modality:
    try:
        text = path.read_text()
    except OSError as e:
        raise DatasetError(
            error("modality.read", source, "", f"cannot read: {e}", "check the file's permissions")
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(
            error(
                "modality.json",
                source,
                "",
                f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
                "fix the JSON syntax, or delete the file to use a generated default layout",
            )
        ) from None
    return parse_modality(data, source)


def feature_width(info: dict, column: str) -> Optional[int]:
    """Declared width of a list column in info.json features (None if unknown)."""
    feat = info.get("features", {}).get(column)
    if not isinstance(feat, dict):
        return None
    shape = feat.get("shape")
    if isinstance(shape, list) and len(shape) >= 1 and isinstance(shape[0], int):
        return int(shape[0])
    return None


def feature_image_shape(info: dict, column: str) -> Optional[tuple[int, int, int]]:
    """(height, width, channels) of a video/image feature in info.json (None if not declared).

    LeRobot writes `names` [height, width, channel(s)]; some writers put the channels first.
    """
    feat = info.get("features", {}).get(column)
    if not isinstance(feat, dict):
        return None
    shape = feat.get("shape")
    if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(v, int) for v in shape):
        return None
    names = [str(n) for n in feat.get("names") or []] if isinstance(feat.get("names"), list) else []
    if "height" in names and "width" in names:
        rest = [i for i in range(3) if names[i] not in ("height", "width")]
        return shape[names.index("height")], shape[names.index("width")], shape[rest[0]] if rest else 3
    if names[:1] in (["channels"], ["channel"]):
        return shape[1], shape[2], shape[0]
    return shape[0], shape[1], shape[2]


def check_modality(
    modality: Modality,
    info: dict,
    *,
    source: str = MODALITY_FILE,
    columns: Optional[list[str]] = None,
    video_exists: Optional[Callable[[str], list[str]]] = None,
) -> list[Issue]:
    """Check a parsed modality against info.json, parquet columns and video files.

    columns: the parquet column names (from an episode's schema); annotation checks are skipped if None.
    video_exists: maps a video original_key to the list of missing file paths (empty = all present).
    """
    issues: list[Issue] = []
    for group in ("state", "action"):
        specs: dict[str, SliceSpec] = getattr(modality, group)
        by_column: dict[str, list[tuple[str, SliceSpec]]] = {}
        for key, spec in specs.items():
            by_column.setdefault(modality.column(group, key), []).append((key, spec))
            issues += _check_slice(group, key, spec, source)
        for col, entries in by_column.items():
            issues += _check_column(group, col, entries, info, columns, source)
    for name, vspec in modality.video.items():
        issues += _check_video(name, vspec, info, video_exists, source)
    if columns is not None:
        issues += _check_annotations(modality, columns, source)
    return issues


def _check_slice(group: str, key: str, spec: SliceSpec, source: str) -> list[Issue]:
    """One key on its own: rotation width, range."""
    issues: list[Issue] = []
    k = f"{group}.{key}"
    if spec.rotation_type is not None:
        need = ROTATION_WIDTHS[spec.rotation_type]
        if spec.width % need:
            issues.append(
                error(
                    "modality.rotation_width",
                    source,
                    k,
                    f"rotation_type {spec.rotation_type} needs {need} dims (or a multiple, for stacked "
                    f"rotations) but the slice {spec.start}:{spec.end} has {spec.width}",
                    "correct start/end or rotation_type",
                )
            )
        elif spec.width != need:
            # Upstream accepts this (e.g. an 18-D rotation_6d = three 6-D rotations); a target
            # rotation conversion of such a key would treat it as one rotation.
            issues.append(
                warning(
                    "modality.rotation_stacked",
                    source,
                    k,
                    f"{spec.width} dims = {spec.width // need} stacked {spec.rotation_type} rotations of {need}",
                    "fine as a plain vector; do not list this key in *_target_rotations (one rotation per key)",
                )
            )
    if spec.range is not None and spec.range[0] >= spec.range[1]:
        issues.append(
            error(
                "modality.range", source, k, f"range {list(spec.range)} is empty", "use [lo, hi] with lo < hi"
            )
        )
    return issues


def _check_column(
    group: str,
    col: str,
    entries: list[tuple[str, SliceSpec]],
    info: dict,
    columns: Optional[list[str]],
    source: str,
) -> list[Issue]:
    """The keys slicing one column: the column exists, slices fit its width, overlaps, coverage."""
    features = info.get("features", {})
    keys = ", ".join(f"{group}.{k}" for k, _ in entries)
    if col not in features:
        return [
            error(
                "modality.column",
                source,
                keys,
                f"original_key {col!r} is not a feature in meta/info.json",
                f"set original_key to one of the info.json features ({', '.join(sorted(features))})",
            )
        ]
    issues: list[Issue] = []
    if columns is not None and col not in columns:
        issues.append(
            error(
                "modality.column",
                source,
                keys,
                f"column {col!r} is not in the episode parquet files",
                "point original_key at an existing parquet column",
            )
        )
    width = feature_width(info, col)
    if width is None:
        return issues
    covered = [False] * width
    for key, spec in sorted(entries, key=lambda e: e[1].start):
        k = f"{group}.{key}"
        if spec.end > width:
            issues.append(
                error(
                    "modality.out_of_range",
                    source,
                    k,
                    f"slice {spec.start}:{spec.end} exceeds the width {width} of {col!r} "
                    "declared in meta/info.json features",
                    f"use indices within 0..{width} (is this the layout of another robot?)",
                )
            )
        overlap = next((d for d in range(spec.start, min(spec.end, width)) if covered[d]), None)
        if overlap is not None:
            others = [f"{group}.{o}" for o, s in entries if o != key and s.start <= overlap < s.end]
            # Upstream allows this (its N1.6 arx layout reads an end-effector key over joint dims):
            # both keys are fed, so the model sees those dims twice.
            issues.append(
                warning(
                    "modality.overlap",
                    source,
                    k,
                    f"slice {spec.start}:{spec.end} overlaps {', '.join(others)} at dim {overlap}",
                    "fine if intended (two views of the same dims); otherwise make the slices disjoint",
                )
            )
        for d in range(spec.start, min(spec.end, width)):
            covered[d] = True
    missing = [d for d, c in enumerate(covered) if not c]
    if missing:
        issues.append(
            warning(
                "modality.uncovered",
                source,
                f"{group} ({col})",
                f"{len(missing)} of {width} dims are not covered by any key: {_ranges(missing)}",
                "ignore if these dims are unused; otherwise add a key covering them",
            )
        )
    return issues


def _check_video(
    name: str,
    vspec: VideoSpec,
    info: dict,
    video_exists: Optional[Callable[[str], list[str]]],
    source: str,
) -> list[Issue]:
    features = info.get("features", {})
    k = f"video.{name}"
    feat = features.get(vspec.original_key)
    if feat is None:
        vids = [c for c, f in features.items() if isinstance(f, dict) and f.get("dtype") == "video"]
        return [
            error(
                "modality.video_key",
                source,
                k,
                f"original_key {vspec.original_key!r} is not a feature in meta/info.json",
                f"use one of the video features: {', '.join(vids) or '(none declared)'}",
            )
        ]
    if isinstance(feat, dict) and feat.get("dtype") not in ("video", "image"):
        return [
            error(
                "modality.video_key",
                source,
                k,
                f"feature {vspec.original_key!r} has dtype {feat.get('dtype')!r}, not 'video'",
                "point original_key at a video feature",
            )
        ]
    missing_files = video_exists(vspec.original_key) if video_exists is not None else []
    if not missing_files:
        return []
    shown = ", ".join(missing_files[:3]) + (" ..." if len(missing_files) > 3 else "")
    return [
        error(
            "modality.video_files",
            source,
            k,
            f"{len(missing_files)} video file(s) missing: {shown}",
            "restore the mp4 files (or remove the episodes / the video key)",
        )
    ]


def _check_annotations(modality: Modality, columns: list[str], source: str) -> list[Issue]:
    issues: list[Issue] = []
    candidates = ", ".join(c for c in columns if "annotation" in c or c == "task_index")
    for name in modality.annotation:
        col = modality.column("annotation", name)
        if col not in columns:
            issues.append(
                error(
                    "modality.annotation",
                    source,
                    f"annotation.{name}",
                    f"column {col!r} is not in the episode parquet files",
                    f"set original_key to one of the parquet columns ({candidates})",
                )
            )
    return issues


def default_modality(
    info: dict, columns: Optional[list[str]] = None, has_video: Optional[Callable[[str], bool]] = None
) -> Modality:
    """A layout for a dataset without modality.json: one key per state/action column, every video
    feature with files on disk (`has_video`), annotations from `annotation.*` columns (or task_index)."""
    features = info.get("features", {})
    state: dict[str, SliceSpec] = {}
    action: dict[str, SliceSpec] = {}
    video: dict[str, VideoSpec] = {}
    annotation: dict[str, AnnotationSpec] = {}
    for col, feat in features.items():
        if not isinstance(feat, dict):
            continue
        dtype = str(feat.get("dtype", ""))
        if dtype in ("video", "image"):
            if has_video is not None and not has_video(col):
                continue
            video[col.split(".")[-1]] = VideoSpec(original_key=col)
            continue
        width = feature_width(info, col)
        if width is None:
            continue
        if col.startswith("observation.state"):
            key = "state" if col == "observation.state" else col.removeprefix("observation.state.")
            state[key.replace(".", "_")] = SliceSpec(
                start=0, end=width, original_key=col, dtype=_float(dtype)
            )
        elif col == "action" or col.startswith("action."):
            key = "action" if col == "action" else col.removeprefix("action.")
            action[key.replace(".", "_")] = SliceSpec(
                start=0, end=width, original_key=col, dtype=_float(dtype)
            )
        elif col.startswith("annotation."):
            annotation[col.removeprefix("annotation.")] = AnnotationSpec()
    cols = set(columns) if columns is not None else set(features)
    if not annotation and "task_index" in cols:
        annotation["human.task_description"] = AnnotationSpec(original_key="task_index")
    return Modality(state=state, action=action, video=video, annotation=annotation)


def _float(dtype: str) -> str:
    return dtype if dtype else "float64"


def _ranges(dims: list[int]) -> str:
    out, start, prev = [], dims[0], dims[0]
    for d in dims[1:] + [None]:  # type: ignore[list-item]
        if d is not None and d == prev + 1:
            prev = d
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if d is not None:
            start = prev = d
    return ", ".join(out)
