"""Structured config of the G1 + Inspire runner (`deploy.robot`), and of `mode=camera_server`.

Defaults describe a 29-DoF G1 (mode_machine 5) with Inspire DFX hands and the legacy stitched
camera server on PC2; conf/deploy/g1_inspire.yaml spells them out. Joint limits are the URDF values
of docs/g1_interfaces.md (joint table), one entry per joint (left and right shoulder roll are *not*
mirrors of each other); `safety.limit_margin` pulls them inward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import OmegaConf


@dataclass
class JointConfig:
    index: int = 0  # motor slot in LowCmd_/LowState_
    lower: float = 0.0  # rad (URDF)
    upper: float = 0.0
    kp: float = 60.0
    kd: float = 1.5


def _j(index: int, lower: float, upper: float, kp: float = 60.0, kd: float = 1.5) -> JointConfig:
    return JointConfig(index=index, lower=lower, upper=upper, kp=kp, kd=kd)


def g1_upper_body_joints() -> dict[str, JointConfig]:
    """Waist + arms of the 29-DoF G1 (URDF limits; gains of the arm_sdk example / inspect-robots)."""
    w = 1.614429558
    r = 1.972222054
    return {
        "waist_yaw": _j(12, -2.618, 2.618),
        "waist_roll": _j(13, -0.52, 0.52),
        "waist_pitch": _j(14, -0.52, 0.52),
        "left_shoulder_pitch": _j(15, -3.0892, 2.6704),
        "left_shoulder_roll": _j(16, -1.5882, 2.2515),
        "left_shoulder_yaw": _j(17, -2.618, 2.618),
        "left_elbow": _j(18, -1.0472, 2.0944),
        "left_wrist_roll": _j(19, -r, r, 40.0),
        "left_wrist_pitch": _j(20, -w, w, 40.0),
        "left_wrist_yaw": _j(21, -w, w, 40.0),
        "right_shoulder_pitch": _j(22, -3.0892, 2.6704),
        "right_shoulder_roll": _j(23, -2.2515, 1.5882),
        "right_shoulder_yaw": _j(24, -2.618, 2.618),
        "right_elbow": _j(25, -1.0472, 2.0944),
        "right_wrist_roll": _j(26, -r, r, 40.0),
        "right_wrist_pitch": _j(27, -w, w, 40.0),
        "right_wrist_yaw": _j(28, -w, w, 40.0),
    }


@dataclass
class BodyPartConfig:
    """What one embodiment key (`left_arm`, `right_hand`, ...) is on the robot.

    kind=arm: `joints` names entries of RobotConfig.joints, in the dataset's order.
    kind=hand: `side` left|right; the dataset's hand vector (any width), mapped to the 6 Inspire
    fingers (pinky, ring, middle, index, thumb-bend, thumb-rotation) by RobotConfig.hands
    (finger_indices, dataset_open/closed, extra_state).
    """

    kind: str = "arm"  # arm | hand
    joints: list[str] = field(default_factory=list)
    side: Optional[str] = None


def g1_inspire_parts() -> dict[str, BodyPartConfig]:
    arm = [
        "shoulder_pitch",
        "shoulder_roll",
        "shoulder_yaw",
        "elbow",
        "wrist_roll",
        "wrist_pitch",
        "wrist_yaw",
    ]
    return {
        "left_arm": BodyPartConfig(kind="arm", joints=[f"left_{j}" for j in arm]),
        "right_arm": BodyPartConfig(kind="arm", joints=[f"right_{j}" for j in arm]),
        "left_hand": BodyPartConfig(kind="hand", side="left"),
        "right_hand": BodyPartConfig(kind="hand", side="right"),
        "waist": BodyPartConfig(kind="arm", joints=["waist_yaw", "waist_roll", "waist_pitch"]),
    }


@dataclass
class DdsConfig:
    domain_id: int = 0  # 0 on the real robot; sims and tests use another
    interface: Optional[str] = None  # e.g. eth0 / enp3s0 (the NIC on 192.168.123.x); lo for tests


@dataclass
class ArmConfig:
    topic: str = "rt/arm_sdk"  # rt/arm_sdk (robot balances) | rt/lowcmd (debug mode only)
    # 4 = g1_23dof, 5 = g1_29dof (incl. Inspire), 6 = g1_29dof_lock_waist, ... (docs/g1_interfaces.md)
    expected_mode_machine: int = 5
    weight_ramp_s: float = 2.0  # arm_sdk blend weight 0 -> 1 (start) and 1 -> 0 (stop)
    lowstate_timeout_s: float = 2.0  # wait for the first rt/lowstate at start-up


@dataclass
class HandsConfig:
    kind: str = "dfx"  # dfx (rt/inspire/*) | ftp (rt/inspire_hand/*/{l,r}) | none
    rate_hz: float = 100.0
    max_stroke_per_s: float = 2.0  # rate limit, full strokes (0 -> 1) per second
    deadband: float = 0.0  # skip a publish when no value moved more than this
    open_on_stop: bool = True
    state_timeout_s: float = 0.5  # hand state older than this counts as stale
    # -- dataset hand vector <-> the 6 Inspire fingers (gr00t_exp/robot/handmap.py) ---------------
    # Width of each dataset hand key; null = the embodiment's modality layout (6 when it has none).
    dataset_dim: Optional[int] = None
    # finger_indices[k] = the dataset hand dim that drives Inspire finger k (pinky, ring, middle,
    # index, thumb-bend, thumb-rotation). 6 distinct values in [0, dataset_dim).
    finger_indices: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    # Dataset values meaning "fully open" / "fully closed", per finger (1 value = all fingers).
    # Inspire's own scale is 1 = open, 0 = closed; e.g. 0..1000 data: open [1000], closed [0];
    # 1 = closed data: open [0], closed [1]; xr_teleoperate radians: open [0], closed [1.7].
    dataset_open: list[float] = field(default_factory=lambda: [1.0])
    dataset_closed: list[float] = field(default_factory=lambda: [0.0])
    # Dataset hand dims no finger uses (e.g. the 7th of a 7-D hand): observed as the last commanded
    # value (last_command, starting at extra_fill) or always extra_fill (fill); never sent to the hand.
    extra_state: str = "last_command"
    extra_fill: float = 0.0


@dataclass
class CameraSplit:
    """A named column range of a received image (x1 = null: to the right edge)."""

    name: str = "???"
    x0: int = 0
    x1: Optional[int] = None


@dataclass
class CameraStream:
    """One ZMQ PUB address sending one JPEG per message."""

    port: int = 5555
    host: Optional[str] = None  # null = CamerasConfig.host
    # empty = the whole image is one camera named `name`
    splits: list[CameraSplit] = field(default_factory=list)
    name: Optional[str] = None
    header: bool = False  # legacy Unit_Test mode: 12-byte 'dI' (timestamp, frame id) before the JPEG


def legacy_streams() -> list[CameraStream]:
    """xr_teleoperate's image_server.py: binocular head 480x1280 | two wrists 480x640, one JPEG."""
    return [
        CameraStream(
            port=5555,
            splits=[
                CameraSplit("cam_left_high", 0, 640),
                CameraSplit("cam_right_high", 640, 1280),
                CameraSplit("cam_left_wrist", 1280, 1920),
                CameraSplit("cam_right_wrist", 1920, 2560),
            ],
        )
    ]


@dataclass
class CamerasConfig:
    host: str = "192.168.123.164"  # PC2
    streams: list[CameraStream] = field(default_factory=legacy_streams)
    stale_s: float = 0.5  # a frame older than this pauses the policy (hold)
    startup_timeout_s: float = 5.0
    # Resize each camera to the dataset's resolution [H, W] before the policy (null = as received).
    resize: Optional[list[int]] = None


@dataclass
class SafetyConfig:
    limit_margin: float = 0.05  # rad pulled in from each URDF limit
    max_velocity: float = 1.5  # rad/s per joint, policy execution (teleop uses far more)
    max_acceleration: float = 10.0  # rad/s^2 per joint
    max_tracking_error: float = 0.5  # rad |command - measured| on any joint ...
    tracking_error_s: float = 0.3  # ... for longer than this -> the robot does not follow: stop
    lowstate_stale_s: float = 0.1  # hold when rt/lowstate is older than this ...
    lowstate_abort_s: float = 1.0  # ... and stop (ramp down) when older than this
    verify_lowstate_crc: bool = True  # refuse (count, treat as missing) rt/lowstate with a bad CRC
    # A policy request outstanding this long, or no chunk this long after the last ran out -> stop
    # (checked by the command loop; deploy.policy.timeout_ms must not exceed it).
    policy_timeout_s: float = 3.0
    max_policy_errors: int = 5  # consecutive failed/invalid policy replies -> stop
    max_episode_s: float = 120.0
    confirm: bool = True  # ask the operator before the first motion
    dry_run: bool = False  # everything but publishing commands


@dataclass
class ControlConfig:
    command_hz: float = 250.0
    # Action waypoint rate = the training dataset's fps; null = read from the dataset's
    # meta/info.json (data.sources[0]; gr00t_exp/robot/runner.py:control_fps).
    fps: Optional[float] = None
    execute_steps: int = 8  # request the next chunk after this many steps at the latest ...
    latency_margin_s: float = 0.03  # ... or earlier, so it lands this long before the chunk runs out
    blend_s: float = 0.1  # cross-fade from the old chunk to the new one
    task: str = "pick up the object"
    # SCHED_FIFO for the command thread (gr00t_exp/robot/realtime.py); needs CAP_SYS_NICE or an rtprio
    # limit, otherwise the run continues at normal priority with a warning.
    realtime_priority: bool = False
    fifo_priority: int = 50  # 1..99 (threaded IRQs default to 50)
    cpu_affinity: Optional[list[int]] = None  # pin the command thread to these CPUs (null = any)


@dataclass
class RecordConfig:
    root: str = "${paths.output_dir}/recording"
    fps: Optional[float] = None  # null = control.fps


@dataclass
class RobotConfig:
    dds: DdsConfig = field(default_factory=DdsConfig)
    arm: ArmConfig = field(default_factory=ArmConfig)
    hands: HandsConfig = field(default_factory=HandsConfig)
    cameras: CamerasConfig = field(default_factory=CamerasConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    recording: RecordConfig = field(default_factory=RecordConfig)
    joints: dict[str, JointConfig] = field(default_factory=g1_upper_body_joints)
    # embodiment key (without the state./action. prefix) -> robot part; keys the embodiment
    # config does not use are ignored.
    parts: dict[str, BodyPartConfig] = field(default_factory=g1_inspire_parts)
    camera_server: CameraServerConfig = field(default_factory=lambda: CameraServerConfig())


@dataclass
class CameraSourceConfig:
    name: str = "head"
    device: str = "0"  # /dev/videoN index, a path, or "synthetic"
    width: int = 640
    height: int = 480
    fourcc: Optional[str] = "MJPG"


@dataclass
class CameraServerConfig:
    """`mode=camera_server` (runs on PC2): capture -> JPEG -> ZMQ PUB."""

    bind: str = "tcp://*:5555"
    # stitched: all cameras side by side in one JPEG on `bind` (legacy); per_port: one PUB per
    # camera, bind port + i.
    layout: str = "stitched"
    fps: float = 30.0
    jpeg_quality: int = 90
    sources: list[CameraSourceConfig] = field(
        default_factory=lambda: [
            CameraSourceConfig("head", "0", 1280, 480),
            CameraSourceConfig("left_wrist", "2"),
            CameraSourceConfig("right_wrist", "4"),
        ]
    )
    max_frames: Optional[int] = None  # stop after this many (tests)


def robot_config(cfg: Any) -> RobotConfig:
    """The typed RobotConfig of a run config (its deploy.robot), of a deploy.robot node, or `cfg`
    itself when it already is one; shared by mode=robot and mode=camera_server."""
    node = cfg.deploy.robot if hasattr(cfg, "deploy") else cfg
    if isinstance(node, RobotConfig):
        return node
    # Resolve interpolations (${paths.output_dir}) against the whole run config first.
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    merged = OmegaConf.merge(OmegaConf.structured(RobotConfig), plain)
    return OmegaConf.to_object(merged)
