"""Which parameters of GR00T N1.5 train: tune_* flags, LoRA (peft), gradient checkpointing, summary.

Upstream semantics (docs/upstream.md "N1.5 trainable flags"), on parameter names equal to the checkpoint keys:

| flag (False ->)        | frozen                                                                  |
| ---------------------- | ----------------------------------------------------------------------- |
| tune_llm               | backbone.eagle_model.language_model (token embeddings included)         |
| tune_visual            | backbone.eagle_model.vision_model and backbone.eagle_model.mlp1         |
| tune_projector         | action_head.{state_encoder, action_encoder, action_decoder, position_embedding} |
| tune_diffusion_model   | action_head.model (the DiT only)                                        |

Everything else trains whatever the flags say: action_head.vlln, action_head.vl_self_attention,
action_head.future_tokens (and backbone.eagle_linear when project_to_dim is set). A module with no
trainable parameter is kept in eval mode whenever the model trains (upstream does this at every
forward, so dropout never runs in frozen parts).

LoRA (`cfg.lora.rank > 0`): peft adapters on the nn.Linear layers whose name ends with one of
`cfg.lora.target_modules`, inside the parts named by `cfg.lora.targets`:
`action_head` (upstream's default: DiT + VL self-attention), `dit`, `vl_self_attention`, `llm`,
`visual`, or `full` (upstream's --lora-full-model). The base weights of a LoRA-targeted part are
frozen; only its adapters train. Parts outside the targets keep the flag semantics, so with the
default flags LoRA on `action_head` trains exactly upstream's set (the adapters alone).
`merge_lora(model)` folds the adapters into the base weights and restores the plain modules, so the
state-dict keys are the checkpoint's again (export, serving).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)

VISION = "backbone.eagle_model.vision_model"
CONNECTOR = "backbone.eagle_model.mlp1"
LLM = "backbone.eagle_model.language_model"
DIT = "action_head.model"
VL_SELF_ATTN = "action_head.vl_self_attention"
PROJECTORS = (
    "action_head.state_encoder",
    "action_head.action_encoder",
    "action_head.action_decoder",
    "action_head.position_embedding",
)
ALWAYS_TRAINED = ("action_head.vlln", VL_SELF_ATTN, "action_head.future_tokens")

LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "action_head": ("action_head",),
    "dit": (DIT,),
    "vl_self_attention": (VL_SELF_ATTN,),
    "llm": (LLM,),
    "visual": (VISION,),
    "full": ("",),
}

# Rows of the parameter summary, in model order.
SUMMARY_MODULES = (
    VISION,
    CONNECTOR,
    LLM,
    "backbone.eagle_linear",
    "action_head.vlln",
    VL_SELF_ATTN,
    DIT,
    *PROJECTORS,
    "action_head.future_tokens",
)

_FROZEN_EVAL_ATTR = "_gr00t_frozen_eval_modules"


@dataclass(frozen=True)
class TuningLayout:
    """Where a model family keeps the parts the tune_* flags and LoRA targets name.

    N1.5 uses the module constants above; a model exposes its own as `model.tuning_layout()`
    (GR00T N1.6: `backbone.model.*`, no VL self-attention, `tune_vlln`, top LLM layers).
    """

    vision: str
    connector: str
    llm: str
    dit: str
    projectors: tuple[str, ...]
    lora_targets: dict[str, tuple[str, ...]]
    summary_modules: tuple[str, ...]
    # Frozen by a flag of the model's own config (not a ModelConfig flag), e.g. N1.6 tune_vlln=false.
    extra_frozen: tuple[str, ...] = ()
    # Trainable even under a frozen prefix (N1.6: the top `tune_top_llm_layers` kept LLM layers).
    kept_trainable: tuple[str, ...] = ()


N15_LAYOUT = TuningLayout(
    vision=VISION,
    connector=CONNECTOR,
    llm=LLM,
    dit=DIT,
    projectors=PROJECTORS,
    lora_targets=LORA_TARGETS,
    summary_modules=SUMMARY_MODULES,
)


def layout_of(model: nn.Module) -> TuningLayout:
    fn = getattr(_unwrap_compiled(model), "tuning_layout", None)
    return fn() if callable(fn) else N15_LAYOUT


def _unwrap_compiled(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)


def _under(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def _base_name(name: str) -> str:
    """Parameter name with peft's wrapper level removed (`x.base_layer.weight` -> `x.weight`)."""
    return name.replace(".base_layer.", ".")


def _is_lora_param(name: str) -> bool:
    return ".lora_" in name


def frozen_prefixes(cfg, layout: TuningLayout = N15_LAYOUT) -> list[str]:
    """Module prefixes the tune_* flags freeze (ModelConfig fields)."""
    out: list[str] = list(layout.extra_frozen)
    if not cfg.tune_llm:
        out.append(layout.llm)
    if not cfg.tune_visual:
        out += [layout.vision, layout.connector]
    if not cfg.tune_projector:
        out += list(layout.projectors)
    if not cfg.tune_diffusion_model:
        out.append(layout.dit)
    return out


def lora_prefixes(cfg, layout: TuningLayout = N15_LAYOUT) -> list[str]:
    if int(cfg.lora.rank) <= 0:
        return []
    out: list[str] = []
    for t in cfg.lora.targets:
        if t not in layout.lora_targets:
            raise ValueError(
                f"model.lora.targets: unknown target {t!r}; choose from {', '.join(layout.lora_targets)}"
            )
        out += layout.lora_targets[t]
    return out


def lora_module_names(model: nn.Module, prefixes: Iterable[str], target_modules: Iterable[str]) -> list[str]:
    """Full names of the nn.Linear modules LoRA wraps: under a prefix, name ending with a target."""
    prefixes, targets = list(prefixes), list(target_modules)
    names = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or not any(_under(name, p) for p in prefixes):
            continue
        if any(name == t or name.endswith("." + t) for t in targets):
            names.append(name)
    return names


def apply_tuning(model: nn.Module, cfg) -> nn.Module:
    """Set requires_grad per the flags, add LoRA adapters, switch gradient checkpointing (in place).

    `cfg` is a ModelConfig (dataclass or DictConfig). Logs the parameter summary and returns the model.
    """
    layout = layout_of(model)
    lprefixes = lora_prefixes(cfg, layout)
    if lprefixes:
        _inject_lora(model, cfg, lprefixes)
    # Checkpoint-only parameters (the SigLIP pooling head) never get gradients: always frozen.
    unused = tuple(p.rstrip(".") for p in getattr(model, "unused_parameter_prefixes", ()))
    flagged = frozen_prefixes(cfg, layout)
    always = lprefixes + list(unused)
    for name, p in model.named_parameters():
        if _is_lora_param(name):
            p.requires_grad_(True)
        else:
            base = _base_name(name)
            frozen = any(_under(base, f) for f in flagged) and not any(
                _under(base, k) for k in layout.kept_trainable
            )
            p.requires_grad_(not (frozen or any(_under(base, f) for f in always)))
    _install_frozen_eval(model)
    set_gradient_checkpointing(model, bool(getattr(cfg, "gradient_checkpointing", False)))
    log.info("GR00T parameters:\n%s", format_summary(parameter_summary(model)))
    return model


# --------------------------------------------------------------------------------------- LoRA
def _inject_lora(model: nn.Module, cfg, prefixes: list[str]) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    names = lora_module_names(model, prefixes, cfg.lora.target_modules)
    if not names:
        raise ValueError(
            f"model.lora: no nn.Linear named *{list(cfg.lora.target_modules)} under {prefixes} "
            "(targets / target_modules match nothing); fix model.lora.target_modules"
        )
    lcfg = LoraConfig(
        r=int(cfg.lora.rank),
        lora_alpha=int(cfg.lora.alpha),
        lora_dropout=float(cfg.lora.dropout),
        bias="none",
        target_modules=names,
    )
    # Adapters are created on the device/dtype of the wrapped layer.
    inject_adapter_in_model(lcfg, model)
    log.info("LoRA r=%d alpha=%d on %d Linear layers under %s", lcfg.r, lcfg.lora_alpha, len(names), prefixes)


def has_lora(model: nn.Module) -> bool:
    return any(_is_lora_param(n) for n, _ in model.named_parameters())


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA adapter into its base Linear and put the plain Linear back (in place)."""
    from peft.tuners.lora import LoraLayer

    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLayer)]
    for name, mod in wrapped:
        mod.merge(safe_merge=True)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, mod.get_base_layer())
    if wrapped:
        log.info("merged %d LoRA adapters", len(wrapped))
    return model


# ------------------------------------------------------------------------- frozen -> eval mode
def _fully_frozen_modules(model: nn.Module) -> list[str]:
    """Top-most modules (of SUMMARY_MODULES) whose parameters are all frozen."""
    out = []
    for prefix in layout_of(model).summary_modules:
        try:
            mod = model.get_submodule(prefix)
        except AttributeError:
            continue
        params = list(mod.parameters())
        if params and not any(p.requires_grad for p in params):
            out.append(prefix)
    return out


def set_frozen_modules_to_eval(model: nn.Module) -> None:
    for prefix in getattr(model, _FROZEN_EVAL_ATTR, ()):
        model.get_submodule(prefix).eval()


def _frozen_eval_pre_hook(module: nn.Module, args, kwargs=None):
    if module.training:
        set_frozen_modules_to_eval(module)


def _install_frozen_eval(model: nn.Module) -> None:
    """Keep frozen parts in eval mode: now and before every training-mode forward (as upstream).

    The module names live on the model (not in a closure), so deep copies stay correct.
    """
    setattr(model, _FROZEN_EVAL_ATTR, tuple(_fully_frozen_modules(model)))
    if not getattr(model, "_gr00t_frozen_eval_hooked", False):
        model.register_forward_pre_hook(_frozen_eval_pre_hook)
        model._gr00t_frozen_eval_hooked = True
    if model.training:
        set_frozen_modules_to_eval(model)


# ------------------------------------------------------------------ gradient checkpointing
def set_gradient_checkpointing(model: nn.Module, enabled: bool) -> None:
    """Switch activation checkpointing on/off through the model's `set_gradient_checkpointing`."""
    fn = getattr(model, "set_gradient_checkpointing", None)
    if fn is None:
        if enabled:
            raise ValueError(
                f"model.gradient_checkpointing=true but {type(model).__name__} has no "
                "set_gradient_checkpointing(enabled); set it to false"
            )
        return
    fn(enabled)


# ------------------------------------------------------------------------------- summary
@dataclass
class ParamRow:
    module: str
    total: int
    trainable: int


def parameter_summary(model: nn.Module) -> list[ParamRow]:
    """Total / trainable parameter counts per top-level module (shared tensors counted once)."""
    modules = layout_of(model).summary_modules
    rows = {p: ParamRow(p, 0, 0) for p in modules}
    other = ParamRow("(other)", 0, 0)
    total = ParamRow("total", 0, 0)
    for name, p in model.named_parameters():  # de-duplicates tied parameters
        base = _base_name(name)
        row = next((rows[m] for m in modules if _under(base, m)), other)
        n = p.numel()
        for r in (row, total):
            r.total += n
            r.trainable += n if p.requires_grad else 0
    out = [r for r in rows.values() if r.total]
    if other.total:
        out.append(other)
    return [*out, total]


def format_summary(rows: list[ParamRow]) -> str:
    width = max(len(r.module) for r in rows)
    lines = [f"{'module':<{width}}  {'total':>15}  {'trainable':>15}"]
    for r in rows:
        lines.append(f"{r.module:<{width}}  {r.total:>15,}  {r.trainable:>15,}")
    return "\n".join(lines)
