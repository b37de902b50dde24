"""Structured-config schemas of the `data` and `embodiment` groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class SyntheticConfig:
    """A synthetic GR00T-flavoured LeRobot v2 dataset written by the project itself."""

    episodes: int = 8
    min_length: int = 40
    max_length: int = 60
    fps: int = 20
    height: int = 64
    width: int = 64
    seed: int = 0
    # Where it is written; reused when it already exists with the same parameters.
    out_dir: str = "${paths.cache_dir}/synthetic/${embodiment.name}"


@dataclass
class FrameCacheConfig:
    """Decoded-frame cache: each episode decoded once, sequentially, into a uint8 memmap."""

    enabled: bool = True
    dir: str = "${paths.cache_dir}/frames"
    # Frames are stored at this size (H, W); null keeps the source resolution.
    height: Optional[int] = None
    width: Optional[int] = None
    # Decode every episode into the cache in DataModule.setup (before workers start).
    build_on_setup: bool = True


@dataclass
class DatasetSource:
    path: str = "???"
    weight: float = 1.0


@dataclass
class DataConfig:
    # "synthetic" writes a dataset under synthetic.out_dir; "lerobot" reads `sources`.
    kind: str = "synthetic"
    sources: list[DatasetSource] = field(default_factory=list)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    video_backend: str = "auto"  # auto | torchcodec | pyav
    timestamp_tolerance_s: float = 1e-4
    # Shift an episode's parquet timestamps so its first row maps to the video's first frame
    # (robot_sim.PickNPlace logs row i at (i+1)/fps while frame i plays at i/fps).
    align_timestamps: bool = True
    cache: FrameCacheConfig = field(default_factory=FrameCacheConfig)
    # Where the training video augmentation (crop, resize, colour jitter) + image normalisation
    # run: cpu = in the loader workers, per sample; gpu = batched in the LightningModule on the
    # training device (the loader only fetches frames and collates); auto = gpu when the trainer
    # runs on CUDA. Evaluation always uses the deterministic CPU path.
    augment_on: str = "auto"  # auto | cpu | gpu
    batch_size: int = 32
    num_workers: int = 2
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 4
    val_episodes: int = 1  # held-out episodes (the last ones) for validation / open-loop eval
    balance_dataset_weights: bool = True
    balance_trajectory_weights: bool = True
    write_in_place: bool = False  # mode=stats: write meta/stats.json into the dataset (atomically)


@dataclass
class VideoTransformConfig:
    """Crop, resize and colour jitter of the camera frames (gr00t_exp/data/transforms/video.py's
    VideoTransform takes exactly these fields). Upstream N1.5 values."""

    crop_scale: float = 0.95  # crop side / frame side (random in training, centred in eval)
    resize: int = 224  # square output side (pixels)
    brightness: float = 0.3
    contrast: float = 0.4
    saturation: float = 0.5
    hue: float = 0.08


@dataclass
class EmbodimentConfig:
    """One robot's modality layout and transforms, as YAML (no Python class per robot)."""

    name: str = "???"
    embodiment_tag: str = "new_embodiment"
    video_keys: list[str] = field(default_factory=list)
    state_keys: list[str] = field(default_factory=list)
    action_keys: list[str] = field(default_factory=list)
    language_key: str = "annotation.human.action.task_description"
    observation_indices: list[int] = field(default_factory=lambda: [0])
    action_indices: list[int] = field(default_factory=lambda: list(range(16)))
    # per key: min_max | q99 | mean_std | binary | sin_cos | none
    state_normalization: dict[str, str] = field(default_factory=dict)
    action_normalization: dict[str, str] = field(default_factory=dict)
    state_target_rotations: dict[str, str] = field(default_factory=dict)
    action_target_rotations: dict[str, str] = field(default_factory=dict)
    video: VideoTransformConfig = field(default_factory=VideoTransformConfig)
    max_state_dim: int = 64
    max_action_dim: int = 32
    # The modality.json layout this embodiment expects (used by the synthetic writer, by
    # datasets without a modality.json, and to check a dataset's layout).
    modality: Optional[dict[str, Any]] = None
    # Dataset cameras not fed to the model (still recorded / validated).
    extra_video_keys: list[str] = field(default_factory=list)
    # GR00T N1.6 only: action keys predicted RELATIVE to the last observed state of the same key
    # (N1.6's processor converts the dataset's absolute actions; statistics per chunk step).
    relative_action_keys: list[str] = field(default_factory=list)
