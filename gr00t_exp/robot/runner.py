"""`python run.py experiment=... mode=robot deploy=g1_inspire deploy.policy.host=<gpu-host>`.

Start-up order (nothing moves before the last step):
1. DDS on deploy.robot.dds (domain, interface); first rt/lowstate within arm.lowstate_timeout_s;
   mode_machine == arm.expected_mode_machine; every driven joint inside its limits.
2. Hands state (if any), camera frames for every video key, policy server ping and action keys.
3. Operator confirmation (safety.confirm), unless dry-run.
4. ControlLoop: ramp the arm_sdk weight up holding the measured pose, run, ramp down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.meta import read_info
from gr00t_exp.embodiment import bare
from gr00t_exp.robot.arm import ArmIO, ModeMachineError
from gr00t_exp.robot.cameras import CameraClient
from gr00t_exp.robot.config import RobotConfig, robot_config
from gr00t_exp.robot.control import ControlLoop, RunResult
from gr00t_exp.robot.dds.channel import DdsContext
from gr00t_exp.robot.hands import make_hands
from gr00t_exp.robot.layout import RobotLayout
from gr00t_exp.robot.recorder import Recorder
from gr00t_exp.robot.safety import JointLimits, StopSignal, check_client_timeout, confirm
from gr00t_exp.serve.client import policy_client

log = logging.getLogger(__name__)


class PreflightError(RuntimeError):
    pass


def _check_policy_keys(policy, layout) -> None:
    try:
        mc = policy.get_modality_config()
    except Exception as e:
        raise PreflightError(f"policy get_modality_config failed: {e}") from e
    # N1.5 servers prefix keys ("action.left_arm"), N1.6 servers send bare names ("left_arm").
    served = [bare(k, "action") for k in (mc.get("action", {}) or {}).get("modality_keys", [])]
    missing = [k for k in layout.action_keys if k not in served]
    if served and missing:
        raise PreflightError(
            f"the policy serves actions {served} but the embodiment needs {layout.action_keys} "
            f"(missing {missing}): serve a checkpoint trained on this embodiment"
        )


def run_robot(
    rc: RobotConfig,
    embodiment,
    policy,
    *,
    record: bool = False,
    input_fn: Callable[[str], str] = input,
    stop=None,
):
    """Run one episode on the robot (or the fakes); returns the ControlLoop's RunResult.

    rc.control.fps must be set (mode=robot fills it from the dataset: control_fps)."""
    if rc.control.fps is None:
        raise PreflightError(
            "deploy.robot.control.fps is not set: set it to the training dataset's fps (meta/info.json)"
        )
    layout = RobotLayout.build(embodiment, rc)
    sc = rc.safety
    # The client must give up on a request no later than the runner's watchdog (before any DDS).
    check_client_timeout(getattr(policy, "timeout_ms", None), sc.policy_timeout_s)
    dry = bool(sc.dry_run)
    ctx = DdsContext(rc.dds.domain_id, rc.dds.interface)
    arm = ArmIO(
        ctx, rc.joints, layout.joint_names, rc.arm.topic, dry_run=dry, verify_crc=sc.verify_lowstate_crc
    )
    hands = make_hands(rc.hands.kind, ctx, dry_run=dry)
    cameras = None
    try:
        st = arm.wait_state(rc.arm.lowstate_timeout_s)
        arm.check(st, rc.arm.expected_mode_machine)
        limits = JointLimits.from_config(rc.joints, layout.joint_names, 0.0)
        bad = limits.violations(arm.measured(st), tol=0.02)
        if bad:
            raise PreflightError(
                f"joints outside their URDF limits at start: {bad}; move the arms by hand/app first"
            )
        if rc.hands.kind != "none":
            t_end = time.monotonic() + rc.hands.state_timeout_s * 4
            while hands.state() is None and time.monotonic() < t_end:
                time.sleep(0.01)
            if hands.state() is None:
                log.warning(
                    "no Inspire %s hand state yet: hand observations use the commanded values", rc.hands.kind
                )
        if layout.video_keys:
            cameras = CameraClient(rc.cameras, rc.cameras.resize).start()
            cameras.wait_ready(layout.video_keys, rc.cameras.startup_timeout_s)
        if hasattr(policy, "ping") and not policy.ping():
            raise PreflightError("policy server does not answer ping (deploy.policy.host/port)")
        _check_policy_keys(policy, layout)
        if hasattr(policy, "reset"):
            policy.reset()
        fps = float(rc.control.fps)
        recorder = None
        if record:
            dims_s = {k: layout.dim(k) for k in layout.state_keys}
            dims_a = {k: layout.dim(k) for k in layout.action_keys}
            names = {
                k: list(rc.parts[k].joints) if rc.parts[k].kind == "arm" else None
                for k in dict.fromkeys(layout.state_keys + layout.action_keys)
            }
            recorder = Recorder(
                rc.recording.root,
                rc.recording.fps or fps,
                dims_s,
                dims_a,
                layout.video_keys,
                rc.control.task,
                layout.language_key,
                joint_names={k: v for k, v in names.items() if v},
            )
        if sc.confirm and not dry:
            if not confirm(
                f"About to take the arms (weight ramp {rc.arm.weight_ramp_s:.1f} s, holding the current pose) and run "
                f"task {rc.control.task!r} for at most {sc.max_episode_s:.0f} s. Robot in regular mode, area clear, "
                "remote in hand? [y/N] ",
                input_fn,
            ):
                res = RunResult(reason="not confirmed by the operator", ok=True)
                return res
        if dry:
            log.warning("dry run: nothing is published (safety.dry_run=true)")
        with stop or StopSignal() as sig:
            loop = ControlLoop(rc, layout, arm, hands, policy, cameras, recorder, sig, fps)
            res = loop.run()
        if recorder is not None:
            res.record_root = recorder.save()
        log.info("robot run finished: %s", res.summary())
        return res
    finally:
        if cameras is not None:
            cameras.close()


def control_fps(cfg: Any, rc: RobotConfig) -> float:
    """The action waypoint rate: deploy.robot.control.fps, else the fps in the training dataset's
    meta/info.json (data.sources[0], or the synthetic dataset), since the policy's chunks step at
    the rate the dataset was recorded at."""
    if rc.control.fps is not None:
        return float(rc.control.fps)
    data = cfg.get("data") if hasattr(cfg, "get") else None
    if data is None:
        root = None
    elif str(data.kind) == "synthetic":
        root = Path(str(data.synthetic.out_dir))
    else:
        root = Path(str(data.sources[0].path)).expanduser() if data.sources else None
    if root is None:
        raise PreflightError(
            "deploy.robot.control.fps is not set and no dataset is configured to read it from: set "
            "deploy.robot.control.fps=<the training dataset's fps> or data.sources=[{path: <dataset>}]"
        )
    try:
        return float(read_info(root)["fps"])
    except (DatasetError, KeyError, TypeError, ValueError) as e:
        raise PreflightError(
            f"deploy.robot.control.fps is not set and {root}/meta/info.json gives no fps ({e}); "
            "set deploy.robot.control.fps=<the training dataset's fps>"
        ) from None


def run(cfg: DictConfig) -> int:
    """Entry point of mode=robot."""
    rc = robot_config(cfg)
    try:
        rc.control.fps = control_fps(cfg, rc)
        client = policy_client(cfg.deploy.policy)
    except (PreflightError, FileNotFoundError, ValueError) as e:  # no fps; a CurveZMQ key file
        log.error("robot: %s", e)
        return 2
    try:
        res = run_robot(rc, cfg.embodiment, client, record=bool(cfg.deploy.record))
    except (PreflightError, ModeMachineError, TimeoutError, KeyError, ValueError) as e:
        log.error("robot: %s", e)
        return 2
    finally:
        client.close()
    return 0 if res.ok else 1
