"""`python run.py mode=serve deploy=zmq|http|replay ...`: build the policy, serve until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gr00t_exp.serve.base import BasePolicy, ConstantPolicy
from gr00t_exp.serve.observation import ObservationSpec
from gr00t_exp.serve.security import InsecureBindError, resolve_token

log = logging.getLogger(__name__)


def _bare(keys: Any, group: str) -> list[str]:
    return [k[len(group) + 1 :] if str(k).startswith(group + ".") else str(k) for k in keys or []]


def spec_from_embodiment(
    emb: Any, image_size: list[int] | None = None, strict: bool = True
) -> ObservationSpec:
    """An ObservationSpec from an EmbodimentConfig whose `modality` gives the key widths."""
    modality = emb.get("modality") if hasattr(emb, "get") else getattr(emb, "modality", None)
    if not modality:
        raise ValueError(
            f"embodiment '{emb.name}' has no `modality` layout to size state/action keys; "
            "add one to conf/embodiment/<name>.yaml (or serve a checkpoint / a replay dataset)"
        )

    def width(group: str, key: str) -> int:
        try:
            s = modality[group][key]
        except KeyError:
            raise ValueError(f"embodiment.modality.{group} has no key '{key}'") from None
        return int(s["end"]) - int(s["start"])

    res = tuple(int(v) for v in image_size) if image_size else None
    return ObservationSpec(
        video={k: res for k in _bare(emb.video_keys, "video")},
        state={k: width("state", k) for k in _bare(emb.state_keys, "state")},
        action={k: width("action", k) for k in _bare(emb.action_keys, "action")},
        language_key=emb.language_key,
        video_horizon=len(emb.observation_indices),
        state_horizon=len(emb.observation_indices),
        action_horizon=len(emb.action_indices),
        strict=strict,
    )


def build_policy(cfg: DictConfig) -> BasePolicy:
    pc = cfg.deploy.policy
    emb = cfg.embodiment
    tag = pc.embodiment_tag or emb.embodiment_tag
    if pc.kind == "replay":
        from gr00t_exp.serve.replay import ReplayPolicy

        dataset = pc.dataset or (cfg.data.sources[0].path if cfg.data.sources else None)
        if not dataset:
            raise ValueError("deploy.policy.kind=replay needs deploy.policy.dataset=<dataset root>")
        return ReplayPolicy(
            dataset,
            episode_index=pc.episode_index,
            action_horizon=len(emb.action_indices),
            execution_horizon=pc.execution_horizon,
            video_keys=list(emb.video_keys) or None,
            state_keys=list(emb.state_keys) or None,
            action_keys=list(emb.action_keys) or None,
            language_key=emb.language_key,
            strict=pc.strict,
            embodiment_tag=tag,
        )
    if pc.kind == "constant":
        return ConstantPolicy(spec_from_embodiment(emb, pc.image_size, pc.strict), embodiment_tag=tag)
    if pc.kind == "gr00t":
        from gr00t_exp.serve.policy import Gr00tPolicy

        if not pc.checkpoint:
            raise ValueError("deploy.policy.kind=gr00t needs deploy.policy.checkpoint=<export dir>")
        return Gr00tPolicy(
            pc.checkpoint,
            embodiment_tag=tag,
            embodiment=emb if pc.check_embodiment else None,
            denoising_steps=pc.denoising_steps,
            device=pc.device,
            strict=pc.strict,
        )
    raise ValueError(f"deploy.policy.kind={pc.kind!r} is unknown; use gr00t, replay or constant")


def build_server(cfg: DictConfig, policy: BasePolicy):
    sc = cfg.deploy.server
    token = resolve_token(sc.api_token)
    if sc.kind == "zmq":
        from gr00t_exp.serve.zmq_server import ZmqPolicyServer

        return ZmqPolicyServer(
            policy,
            host=sc.host,
            port=sc.port,
            api_token=token,
            allow_insecure_remote=sc.allow_insecure_remote,
            curve_secret_key_file=sc.curve_secret_key_file,
            curve_authorized_keys_dir=sc.curve_authorized_keys_dir,
            max_message_bytes=sc.max_message_bytes,
            enable_kill=sc.enable_kill,
            max_queue=sc.max_queue,
        )
    if sc.kind == "http":
        from gr00t_exp.serve.http_server import HttpPolicyServer

        if sc.curve_secret_key_file:
            raise ValueError("deploy.server.curve_secret_key_file applies to kind=zmq only")
        return HttpPolicyServer(
            policy,
            host=sc.host,
            port=sc.port,
            api_token=token,
            allow_insecure_remote=sc.allow_insecure_remote,
            max_message_bytes=sc.max_message_bytes,
        )
    raise ValueError(f"deploy.server.kind={sc.kind!r} is unknown; use zmq or http")


def run(cfg: DictConfig) -> int:
    try:
        policy = build_policy(cfg)
        server = build_server(cfg, policy)
    except InsecureBindError as e:
        log.error("%s", e)
        return 2
    except (ValueError, KeyError, FileNotFoundError) as e:
        log.error("cannot start the server: %s", e)
        return 2
    log.info("serving %s policy; model card: %s", policy.kind, OmegaConf.create(policy.model_card()))
    if cfg.deploy.server.kind == "http":
        try:
            server.serve_forever()  # uvicorn handles SIGINT/SIGTERM, then re-raises the interrupt
        except KeyboardInterrupt:
            pass
        except OSError as e:
            log.error("%s", e)
            return 2
        return 0
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: server.request_stop())
    try:
        server.serve_forever()
    except OSError as e:
        log.error("%s", e)
        return 2
    return 0
