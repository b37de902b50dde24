"""Secrets never reach disk: the one `redact` used wherever a config is saved.

A config value is secret when its key is a credential name (`api_token`, `password`, ...: see
`is_secret_key`); key *files* (`curve_secret_key_file`) are paths, not secrets. `redact` replaces
secret values in a config or plain container; `redact_override` does the same for a command-line
override string (`deploy.server.api_token=...`), and `scrub` removes known secret values from
any text (Hydra's `override_dirname` joins overrides into one string).

`RedactedConfigSaver` is a Hydra callback (conf/hydra/default.yaml) that writes the run's
`.hydra/config.yaml`, `hydra.yaml` and `overrides.yaml` with secrets redacted; Hydra's own copy
is switched off there (`hydra.output_subdir: null`), so a token given on the command line is
never written, not even briefly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

REDACTED = "<redacted>"
HYDRA_SUBDIR = ".hydra"
_SECRET_NAMES = frozenset({"api_token", "token", "password", "passwd", "secret", "api_key", "apikey"})
_SECRET_SUFFIXES = ("_token", "_password", "_api_key", "_secret")
# `key=value`, `+key=value`, `++key=value` (Hydra's override grammar), key possibly dotted
_OVERRIDE = re.compile(r"^(?P<prefix>\+{0,2}~?)(?P<key>[\w./@:-]+)=(?P<value>.*)$", re.S)


def is_secret_key(name: Any) -> bool:
    """True for credential names (api_token, deploy.policy.api_token, wandb_api_key, ...)."""
    leaf = str(name).rsplit(".", 1)[-1].lower()
    return leaf in _SECRET_NAMES or leaf.endswith(_SECRET_SUFFIXES)


def redact(cfg: Any) -> Any:
    """A plain copy of `cfg` (DictConfig, ListConfig, dict, list) with secret values replaced.
    Interpolations are kept unresolved when `cfg` is an OmegaConf node and not resolved before."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    if isinstance(cfg, dict):
        return {
            k: (REDACTED if is_secret_key(k) and v not in (None, "") else redact(v)) for k, v in cfg.items()
        }
    if isinstance(cfg, list):
        return [redact(v) for v in cfg]
    return cfg


def secret_values(cfg: Any) -> set[str]:
    """Every non-empty string value held under a secret key of `cfg`."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    found: set[str] = set()
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            if is_secret_key(k) and isinstance(v, str) and v:
                found.add(v)
            else:
                found |= secret_values(v)
    elif isinstance(cfg, list):
        for v in cfg:
            found |= secret_values(v)
    return found


def redact_override(override: str) -> str:
    """'deploy.server.api_token=abc' -> 'deploy.server.api_token=<redacted>'; others unchanged."""
    m = _OVERRIDE.match(str(override))
    if m and is_secret_key(m["key"]) and m["value"] not in ("", "null"):
        return f"{m['prefix']}{m['key']}={REDACTED}"
    return str(override)


def scrub(text: str, secrets: set[str]) -> str:
    """`text` with each secret value replaced (longest first, so no fragment survives)."""
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, REDACTED)
    return text


class RedactedConfigSaver(Callback):
    """Hydra callback: save the run's .hydra/ files with secrets redacted (see module doc)."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra_node = config.get("hydra") if "hydra" in config else None
        if hydra_node is None:
            return
        out = Path(str(hydra_node.runtime.output_dir)) / HYDRA_SUBDIR
        out.mkdir(parents=True, exist_ok=True)
        task = {k: v for k, v in redact(config).items() if k != "hydra"}
        overrides = [str(o) for o in hydra_node.overrides.task]
        secrets = secret_values(config)
        for o in overrides:
            m = _OVERRIDE.match(o)
            if m and is_secret_key(m["key"]) and m["value"] not in ("", "null"):
                secrets.add(m["value"])
        hydra_plain = redact(OmegaConf.to_container(hydra_node, resolve=False))
        files = {
            "config.yaml": OmegaConf.to_yaml(OmegaConf.create(task)),
            "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_plain})),
            "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create([redact_override(o) for o in overrides])),
        }
        for name, text in files.items():
            (out / name).write_text(scrub(text, secrets))
