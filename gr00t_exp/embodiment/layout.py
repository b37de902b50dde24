"""`EmbodimentLayout`: one robot's keys, slices and widths, built once and passed everywhere.

An embodiment config says which keys the model sees, in which order, and how each is
normalised; a modality (the dataset's meta/modality.json, else the embodiment's own `modality`,
else one rebuilt from a checkpoint's metadata.json) says where each key lives and how wide it is.
`EmbodimentLayout.build` joins the two and checks that they agree, so training, evaluation,
serving, the synthetic writer and the robot all read widths and slices from the same object
instead of re-deriving them from raw dicts.

Keys are held bare (`left_arm`); `KeySpec.name` is the prefixed form (`state.left_arm`).
Without any modality the layout still knows its keys but not their widths (`has_widths` is
False): enough for the robot's joint mapping of an embodiment without a layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from gr00t_exp.data.config import EmbodimentConfig, VideoTransformConfig
from gr00t_exp.data.modality import Modality, feature_image_shape, parse_modality
from gr00t_exp.embodiment.convert import embodiment_config
from gr00t_exp.embodiment.keys import bare, prefixed

# Groups whose keys are slices of dataset columns, concatenated into the model's vectors.
VECTOR_GROUPS: tuple[str, ...] = ("state", "action")


class EmbodimentLayoutError(KeyError, ValueError):
    """The embodiment config and the modality disagree (a missing key, a duplicate, no widths).

    A KeyError (a key is missing) and a ValueError (the configuration is invalid), so callers
    catching either keep working; the message names the key, the source and the fix.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class KeySpec:
    """One state or action key: where it lives in its dataset column and in the model's vector."""

    group: str  # state | action
    key: str  # bare, e.g. left_arm
    column: Optional[str]  # parquet column it is sliced from (None: widths without a dataset)
    start: Optional[int]  # [start, end) of `column`; None when no modality is known
    end: Optional[int]
    offset: Optional[int]  # start in the concatenation of the group's keys (raw units)
    absolute: bool = True
    rotation_type: Optional[str] = None
    continuous: bool = True
    normalization: str = "none"  # the embodiment's *_normalization entry (none when not listed)
    target_rotation: Optional[str] = None

    @property
    def name(self) -> str:
        return prefixed(self.group, self.key)

    @property
    def width(self) -> Optional[int]:
        return None if self.start is None or self.end is None else self.end - self.start

    def require_width(self) -> int:
        if self.width is None:
            raise EmbodimentLayoutError(
                f"{self.name}: width unknown (the embodiment has no modality layout); add `modality` "
                "to conf/embodiment/<name>.yaml or use a dataset / checkpoint that describes it"
            )
        return self.width

    @property
    def column_slice(self) -> slice:
        """The key's dims within its dataset column."""
        return slice(self.start, self.end)

    @property
    def vector_slice(self) -> slice:
        """The key's dims within the concatenation of the group's keys (un-normalised widths)."""
        w = self.require_width()
        assert self.offset is not None
        return slice(self.offset, self.offset + w)


@dataclass(frozen=True)
class ViewSpec:
    """One camera: its modality key, video feature and (when known) frame size."""

    key: str  # bare, e.g. ego_view
    column: Optional[str]  # the video feature (observation.images.<...>); None when unknown
    size: Optional[tuple[int, int]] = None  # (height, width)
    channels: Optional[int] = None

    @property
    def name(self) -> str:
        return prefixed("video", self.key)


@dataclass(frozen=True)
class EmbodimentLayout:
    name: str
    embodiment_tag: str
    state: tuple[KeySpec, ...]
    action: tuple[KeySpec, ...]
    video: tuple[ViewSpec, ...]  # cameras fed to the model, in order
    extra_video: tuple[ViewSpec, ...]  # cameras recorded but not fed to the model
    language_key: str  # bare, e.g. human.action.task_description
    language_column: Optional[str]  # its parquet column (None when the modality lists none)
    observation_indices: tuple[int, ...]
    action_indices: tuple[int, ...]
    max_state_dim: int
    max_action_dim: int
    video_transform: VideoTransformConfig = field(default_factory=VideoTransformConfig, compare=False)
    # What the layout was built from (for column lookups of keys the model does not use).
    modality: Optional[Modality] = field(default=None, compare=False, repr=False)

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        embodiment: Any,
        modality: Modality | Mapping | None = None,
        *,
        video_sizes: Mapping[str, Optional[tuple[int, int]]] | None = None,
        video_channels: Mapping[str, Optional[int]] | None = None,
        source: str | None = None,
    ) -> EmbodimentLayout:
        """Join an embodiment config (DictConfig, EmbodimentConfig, dict) with a modality.

        modality: the dataset's `Modality` (or a modality.json dict); None = the embodiment's own
        `modality`; neither = keys without widths. source: where the modality came from, for
        errors (default: the embodiment's conf file or "the modality").
        """
        if isinstance(embodiment, EmbodimentLayout):
            if modality is None:
                return embodiment
            raise TypeError(
                "EmbodimentLayout.build: pass the embodiment config, not a layout, with a modality"
            )
        cfg = embodiment_config(embodiment)
        if modality is None and cfg.modality:
            modality = cfg.modality
            source = source or f"conf/embodiment/{cfg.name}.yaml (modality)"
        return cls._assemble(cfg, modality, source, video_sizes, video_channels)

    @classmethod
    def keys_only(cls, embodiment: Any) -> EmbodimentLayout:
        """The embodiment's keys, order and normalisation without any modality (widths unknown),
        for code that gets widths elsewhere (e.g. from statistics)."""
        if isinstance(embodiment, EmbodimentLayout):
            return embodiment
        return cls._assemble(embodiment_config(embodiment), None, None, None, None)

    @classmethod
    def _assemble(
        cls,
        cfg: EmbodimentConfig,
        modality: Modality | Mapping | None,
        source: str | None,
        video_sizes: Mapping[str, Optional[tuple[int, int]]] | None,
        video_channels: Mapping[str, Optional[int]] | None,
    ) -> EmbodimentLayout:
        if isinstance(modality, Mapping):
            modality = parse_modality(dict(modality), source or f"conf/embodiment/{cfg.name}.yaml (modality)")
        source = source or "the modality"
        sizes = dict(video_sizes or {})
        channels = dict(video_channels or {})
        return cls(
            name=str(cfg.name),
            embodiment_tag=str(cfg.embodiment_tag),
            state=_key_specs(cfg, "state", modality, source),
            action=_key_specs(cfg, "action", modality, source),
            video=_views(cfg, cfg.video_keys, modality, source, sizes, channels),
            extra_video=_views(cfg, cfg.extra_video_keys, modality, source, sizes, channels),
            language_key=bare(cfg.language_key, "annotation"),
            language_column=_language_column(cfg, modality),
            observation_indices=tuple(int(i) for i in cfg.observation_indices),
            action_indices=tuple(int(i) for i in cfg.action_indices),
            max_state_dim=int(cfg.max_state_dim),
            max_action_dim=int(cfg.max_action_dim),
            video_transform=cfg.video,
            modality=modality,
        )

    @classmethod
    def from_meta(cls, embodiment: Any, meta: Any) -> EmbodimentLayout:
        """The layout of `embodiment` over a loaded dataset (`DatasetMeta`): its modality and the
        frame sizes its info.json declares. A layout passed in is assumed built over `meta`."""
        if isinstance(embodiment, EmbodimentLayout):
            return embodiment
        mod: Modality = meta.modality
        shapes = {k: feature_image_shape(meta.info, v.original_key) for k, v in mod.video.items()}
        return cls.build(
            embodiment,
            mod,
            video_sizes={k: (s[0], s[1]) if s else None for k, s in shapes.items()},
            video_channels={k: s[2] if s else None for k, s in shapes.items()},
            source=f"{meta.root}/meta/modality.json",
        )

    # -- queries ---------------------------------------------------------------------------------
    def specs(self, group: str) -> tuple[KeySpec, ...]:
        if group not in VECTOR_GROUPS:
            raise ValueError(f"specs({group!r}): use one of {', '.join(VECTOR_GROUPS)}")
        return self.state if group == "state" else self.action

    def spec(self, group: str, key: str) -> KeySpec:
        """The KeySpec of `key` (bare or prefixed) in `group`."""
        k = bare(key, group)
        for s in self.specs(group):
            if s.key == k:
                return s
        raise EmbodimentLayoutError(
            f"embodiment {self.name!r} has no {group} key {prefixed(group, k)!r} "
            f"(has: {', '.join(self.prefixed_keys(group)) or 'none'})"
        )

    def keys(self, group: str) -> list[str]:
        """Bare keys of `group` (video, state or action), in the model's order."""
        if group == "video":
            return [v.key for v in self.video]
        return [s.key for s in self.specs(group)]

    def prefixed_keys(self, group: str) -> list[str]:
        return [prefixed(group, k) for k in self.keys(group)]

    @property
    def has_widths(self) -> bool:
        return all(s.width is not None for s in self.state + self.action)

    def widths(self, group: str) -> dict[str, int]:
        """Bare key -> un-normalised width (raises when the layout has no modality)."""
        return {s.key: s.require_width() for s in self.specs(group)}

    def known_widths(self, group: str) -> dict[str, int]:
        """Bare key -> width for the keys whose width is known (empty without a modality)."""
        return {s.key: s.width for s in self.specs(group) if s.width is not None}

    def width(self, group: str) -> int:
        """Total un-normalised width of the group's keys."""
        return sum(self.widths(group).values())

    def columns(self, group: str) -> list[str]:
        """The dataset columns the group's keys are sliced from (sorted, unique)."""
        return sorted({s.column for s in self.specs(group) if s.column is not None})

    def video_sizes(self) -> dict[str, Optional[tuple[int, int]]]:
        return {v.key: v.size for v in self.video}

    @property
    def action_horizon(self) -> int:
        return len(self.action_indices)

    @property
    def observation_horizon(self) -> int:
        return len(self.observation_indices)


def _per_key(values: Mapping[str, str] | None, group: str) -> dict[str, str]:
    return {bare(k, group): str(v) for k, v in (values or {}).items()}


def _key_specs(
    cfg: EmbodimentConfig, group: str, modality: Modality | None, source: str
) -> tuple[KeySpec, ...]:
    keys = [bare(k, group) for k in getattr(cfg, f"{group}_keys")]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise EmbodimentLayoutError(
            f"embodiment {cfg.name!r}: {group}_keys lists {', '.join(prefixed(group, k) for k in dup)} "
            f"more than once; list each key once in conf/embodiment/{cfg.name}.yaml"
        )
    norms = _per_key(getattr(cfg, f"{group}_normalization"), group)
    targets = _per_key(getattr(cfg, f"{group}_target_rotations"), group)
    have = getattr(modality, group) if modality is not None else None
    out, offset = [], 0
    for k in keys:
        common = dict(group=group, key=k, normalization=norms.get(k, "none"), target_rotation=targets.get(k))
        if have is None:
            out.append(KeySpec(column=None, start=None, end=None, offset=None, **common))
            continue
        spec = have.get(k)
        if spec is None:
            raise EmbodimentLayoutError(
                f"embodiment {cfg.name!r} uses {prefixed(group, k)} but {source} has no {group} key {k!r} "
                f"(has: {', '.join(have) or 'none'}); choose the matching embodiment (embodiment=...) "
                f"or fix {group}_keys / the modality"
            )
        out.append(
            KeySpec(
                column=modality.column(group, k),  # type: ignore[union-attr]
                start=spec.start,
                end=spec.end,
                offset=offset,
                absolute=spec.absolute,
                rotation_type=spec.rotation_type,
                continuous=spec.is_continuous,
                **common,
            )
        )
        offset += spec.width
    return tuple(out)


def _views(
    cfg: EmbodimentConfig,
    keys: list[str],
    modality: Modality | None,
    source: str,
    sizes: Mapping[str, Optional[tuple[int, int]]],
    channels: Mapping[str, Optional[int]],
) -> tuple[ViewSpec, ...]:
    out = []
    for key in keys:
        k = bare(key, "video")
        column = None
        # A modality without cameras (e.g. one rebuilt for the robot's joints) leaves them unknown.
        if modality is not None and modality.video:
            if k not in modality.video:
                raise EmbodimentLayoutError(
                    f"embodiment {cfg.name!r} uses {prefixed('video', k)} but {source} has no video key "
                    f"{k!r} (has: {', '.join(modality.video)}); fix video_keys or the modality"
                )
            column = modality.column("video", k)
        size = sizes.get(k)
        out.append(ViewSpec(k, column, tuple(size) if size else None, channels.get(k)))  # type: ignore[arg-type]
    return tuple(out)


def _language_column(cfg: EmbodimentConfig, modality: Modality | None) -> Optional[str]:
    """The instruction's column; None when the modality does not list the key (samples then use
    the episode's task; load_meta reports the mismatch for datasets)."""
    k = bare(cfg.language_key, "annotation")
    if modality is None or k not in modality.annotation:
        return None
    return modality.column("annotation", k)
