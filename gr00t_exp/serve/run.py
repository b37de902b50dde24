"""`python run.py mode=serve deploy=zmq|http|replay ...`: build the policy, serve until stopped."""

from __future__ import annotations

import inspect
import logging
import signal
import threading
from dataclasses import fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gr00t_exp.embodiment import EmbodimentLayout, prefixed
from gr00t_exp.serve.base import BasePolicy, ConstantPolicy
from gr00t_exp.serve.config import ServerConfig
from gr00t_exp.serve.observation import ObservationSpec
from gr00t_exp.serve.security import InsecureBindError, resolve_token

log = logging.getLogger(__name__)


def spec_from_embodiment(
    emb: Any, image_size: list[int] | None = None, strict: bool = True
) -> ObservationSpec:
    """An ObservationSpec from an embodiment config whose `modality` gives the key widths."""
    layout = EmbodimentLayout.build(emb)
    if not layout.has_widths:
        raise ValueError(
            f"embodiment '{layout.name}' has no `modality` layout to size state/action keys; "
            "add one to conf/embodiment/<name>.yaml (or serve a checkpoint / a replay dataset)"
        )
    res = tuple(int(v) for v in image_size) if image_size else None
    return ObservationSpec(
        video={k: res for k in layout.keys("video")},
        state=layout.widths("state"),
        action=layout.widths("action"),
        language_key=prefixed("annotation", layout.language_key),
        video_horizon=layout.observation_horizon,
        state_horizon=layout.observation_horizon,
        action_horizon=layout.action_horizon,
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

        fast = {
            "fast_path": pc.fast_path,
            "autocast": pc.autocast,
            "gpu_preprocess": pc.gpu_preprocess,
            "warmup_batch_sizes": list(pc.warmup_batch_sizes),
        }
        if pc.random_init:
            from gr00t_exp.serve.fast_path import random_init_policy

            return random_init_policy(cfg, **fast)
        if not pc.checkpoint:
            raise ValueError("deploy.policy.kind=gr00t needs deploy.policy.checkpoint=<export dir>")
        return Gr00tPolicy(
            pc.checkpoint,
            embodiment_tag=tag,
            embodiment=emb if pc.check_embodiment else None,
            denoising_steps=pc.denoising_steps,
            device=pc.device,
            strict=pc.strict,
            **fast,
        )
    raise ValueError(f"deploy.policy.kind={pc.kind!r} is unknown; use gr00t, replay or constant")


def _server_class(kind: str) -> type:
    # Imported on demand: the HTTP server needs the optional fastapi/uvicorn extra.
    if kind == "zmq":
        from gr00t_exp.serve.zmq_server import ZmqPolicyServer

        return ZmqPolicyServer
    if kind == "http":
        from gr00t_exp.serve.http_server import HttpPolicyServer

        return HttpPolicyServer
    raise ValueError(f"deploy.server.kind={kind!r} is unknown; use zmq or http")


def server_kwargs(sc: Any, server_cls: type) -> dict[str, Any]:
    """Every ServerConfig field (but `kind`) as a keyword of `server_cls`; a field that server does
    not take is refused when set, so no configured value is silently dropped."""
    params = inspect.signature(server_cls).parameters
    defaults = ServerConfig()
    kwargs: dict[str, Any] = {}
    for f in fields(ServerConfig):
        if f.name == "kind":
            continue
        value = getattr(sc, f.name)
        if f.name in params:
            kwargs[f.name] = value
        elif value != getattr(defaults, f.name):
            raise ValueError(
                f"deploy.server.{f.name}={value!r} is not an option of the {sc.kind} server "
                f"({server_cls.__name__}); remove the override (or use deploy.server.kind=zmq)"
            )
    kwargs["api_token"] = resolve_token(kwargs["api_token"])
    return kwargs


def build_server(cfg: DictConfig, policy: BasePolicy):
    """The configured server around `policy` (not started)."""
    sc = cfg.deploy.server
    server_cls = _server_class(str(sc.kind))
    return server_cls(policy, **server_kwargs(sc, server_cls))


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
