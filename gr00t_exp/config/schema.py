"""The composed run config, typed.

Every Hydra group merges into one of these dataclasses, so a mistyped key or a value of the
wrong type fails at composition time with the key's full name (OmegaConf's ConfigKeyError /
ValidationError) instead of deep inside a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from gr00t_exp.cli import MODES
from gr00t_exp.data.config import DataConfig, EmbodimentConfig
from gr00t_exp.model.config import ModelConfig
from gr00t_exp.robot.config import RobotConfig
from gr00t_exp.serve.config import PolicyConfig, ServerConfig
from gr00t_exp.train.config import TrainerConfig


class _ModeBase(str, Enum):
    def __str__(self) -> str:  # `${mode}` in paths renders "train", not "Mode.train"
        return self.value


# One member per entry of cli.MODES (the mode table), so a new mode cannot be missing here.
Mode = _ModeBase("Mode", {name: name for name in MODES})


@dataclass
class DeployConfig:
    """`deploy`: the policy server, the robot-side client, and the G1 runner. Assembled here (the top
    of the package) so the serving package does not depend on the robot package."""

    server: ServerConfig = field(default_factory=ServerConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)  # G1 runner (gr00t_exp/robot/config.py)
    record: bool = False


@dataclass
class PathsConfig:
    root_dir: str = "."
    output_dir: str = "${hydra:runtime.output_dir}"
    # Shared across runs: synthetic datasets, decoded-frame caches.
    cache_dir: str = "${oc.env:GR00T_EXP_CACHE,${paths.root_dir}/.cache}"


@dataclass
class EvalConfig:
    checkpoint: Optional[str] = None  # a hub-layout export dir; null = the run's own last export
    episodes: list[int] = field(default_factory=list)  # empty = the held-out episodes
    # With nothing held out (data.val_episodes=0) evaluate the last (training) episode instead of
    # refusing; its score then measures fit, not generalisation.
    allow_train_episodes: bool = False
    max_steps_per_episode: Optional[int] = None
    plot: bool = True


@dataclass
class BenchConfig:
    name: str = "dataloader"  # dataloader | model | train | serve | robot
    warmup: int = 5
    iters: int = 50
    batch_size: int = 32
    device: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolsConfig:
    """Options of the dataset tools (validate, stats, inspect, convert, derive_embodiment)."""

    dataset: Optional[str] = None  # defaults to the first data source
    output: Optional[str] = None  # convert / derive_embodiment destination
    target_version: str = "v2.1"  # convert
    episode: int = 0  # inspect
    fail_on_warning: bool = False  # validate
    full_decode: bool = False  # validate: decode every video frame (default: probe + first frame)


@dataclass
class ExportConfig:
    checkpoint: Optional[str] = None
    format: str = "hub"  # hub | onnx
    output: Optional[str] = None  # default: <run dir>/export_<format>
    dtype: Optional[str] = None  # hub: storage dtype (e.g. bfloat16); null keeps the model's
    opset: int = 19  # onnx
    num_views: int = 1  # onnx: camera views in the tracing sample
    verify: bool = True  # onnx: compare onnxruntime with PyTorch


@dataclass
class RunConfig:
    mode: Mode = Mode("train")
    task_name: str = "gr00t_exp"
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    embodiment: EmbodimentConfig = field(default_factory=EmbodimentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: dict[str, Any] = field(default_factory=dict)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    # Free-form notes an experiment carries into its outputs.
    tags: list[str] = field(default_factory=list)


def register_configs() -> None:
    """Register the schema so `conf/config.yaml` can put it first in its defaults list."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
