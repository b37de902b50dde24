"""Checkpoint I/O in the GR00T N1.5 hub layout.

    <dir>/config.json                       GR00T config (model_type gr00t_n1_5)
    <dir>/eagle_config.json                 backbone sizes (optional: N1.5 defaults otherwise)
    <dir>/model.safetensors                 or model-0000x-of-0000y.safetensors + model.safetensors.index.json
    <dir>/experiment_cfg/metadata.json      per-embodiment normalisation stats + modality layout

Loading builds the model with its parameters on the meta device, checks every tensor name and
shape of the files against it (errors name the tensor and where the sizes came from), then loads
shard by shard straight into the requested dtype/device. The tied `lm_head.weight` is ignored
(GR00T never builds the LM head). Saving writes the same layout into a temporary directory that
is renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from gr00t_exp.model.config import Gr00tN15Config, load_preset
from gr00t_exp.model.gr00t_n15 import Gr00tN15

CONFIG_NAME = "config.json"
EAGLE_CONFIG_NAME = "eagle_config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
METADATA_PATH = Path("experiment_cfg") / "metadata.json"
IGNORED_KEYS = ("backbone.eagle_model.language_model.lm_head.weight",)  # tied to embed_tokens
DEFAULT_MAX_SHARD_BYTES = 5 * 1024**3

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
_DTYPES.update({"float16": torch.float16, "fp16": torch.float16})


class CheckpointError(ValueError):
    """A checkpoint does not match the architecture it declares (or cannot be found)."""


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"model.dtype={dtype!r} is not one of float32, bfloat16, float16") from None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ---------------------------------------------------------------------------------------------
# Locating a checkpoint
# ---------------------------------------------------------------------------------------------


def _looks_like_repo_id(s: str) -> bool:
    parts = s.split("/")
    return len(parts) == 2 and all(parts) and not s.startswith((".", "~")) and not os.path.isabs(s)


def resolve_checkpoint_dir(path_or_repo: str | Path, revision: str | None = None) -> Path:
    """A local directory, or a hub repo id fetched with huggingface_hub (cache first)."""
    p = Path(path_or_repo).expanduser()
    if p.is_dir():
        return p
    s = str(path_or_repo)
    if not _looks_like_repo_id(s):
        raise FileNotFoundError(
            f"model.base_model_path={s!r}: no such directory (and not a Hugging Face repo id 'org/name')"
        )
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "experiment_cfg/*"]
    try:
        return Path(snapshot_download(s, revision=revision, allow_patterns=patterns, local_files_only=True))
    except Exception:  # not cached yet: try the network
        pass
    try:
        return Path(snapshot_download(s, revision=revision, allow_patterns=patterns))
    except Exception as e:
        raise CheckpointError(
            f"could not download {s!r} from the Hugging Face Hub ({type(e).__name__}: {e}). "
            "Without network access, download it on another machine "
            f"(`huggingface-cli download {s} --local-dir DIR`), copy DIR here and set "
            "model.base_model_path=DIR; or set model.random_init=true to build the architecture "
            "with random weights."
        ) from e


def read_config(ckpt_dir: Path, **runtime: Any) -> tuple[Gr00tN15Config, str]:
    """(config, where the backbone sizes came from)."""
    cfg_path = ckpt_dir / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(f"{ckpt_dir}: no {CONFIG_NAME}; not a GR00T checkpoint directory")
    config = json.loads(cfg_path.read_text())
    eagle_path = ckpt_dir / EAGLE_CONFIG_NAME
    if eagle_path.is_file():
        eagle, source = json.loads(eagle_path.read_text()), str(eagle_path)
    else:
        eagle, source = (
            load_preset("gr00t_n15_3b")[1],
            "the N1.5 defaults (no eagle_config.json beside config.json)",
        )
    try:
        cfg = Gr00tN15Config.from_hub_dicts(config, eagle, **runtime)
    except ValueError as e:
        raise CheckpointError(
            f"{cfg_path}: {e} (backbone sizes from {source}). Fix: put the eagle_config.json the "
            "checkpoint was trained with beside config.json."
        ) from e
    return cfg, source


def weight_files(ckpt_dir: Path) -> dict[str, Path]:
    """tensor name -> file holding it."""
    index = ckpt_dir / INDEX_NAME
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        out = {k: ckpt_dir / v for k, v in weight_map.items()}
        for f in sorted(set(out.values())):
            if not f.is_file():
                raise CheckpointError(f"{index} lists {f.name}, which is missing")
        return out
    single = ckpt_dir / WEIGHTS_NAME
    if single.is_file():
        with safe_open(str(single), "pt") as f:
            return {k: single for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    raise CheckpointError(f"{ckpt_dir}: neither {WEIGHTS_NAME} nor {INDEX_NAME}")


def file_shapes(files: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from the safetensors headers (no tensor data is read)."""
    shapes: dict[str, tuple[int, ...]] = {}
    by_file: dict[Path, list[str]] = {}
    for k, f in files.items():
        by_file.setdefault(f, []).append(k)
    for f, keys in by_file.items():
        with safe_open(str(f), "pt") as h:
            for k in keys:
                shapes[k] = tuple(h.get_slice(k).get_shape())
    return shapes


# ---------------------------------------------------------------------------------------------
# Building without allocating weights
# ---------------------------------------------------------------------------------------------


@contextmanager
def params_on_meta() -> Iterator[None]:
    """Parameters are created on the meta device (no memory, no init cost); buffers stay real,
    so non-persistent buffers (RoPE frequencies, position ids) keep their computed values."""
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def build_empty(cfg: Gr00tN15Config) -> Gr00tN15:
    with params_on_meta():
        return Gr00tN15(cfg)


def model_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}


def check_keys_and_shapes(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], where: str, sizes_from: str
) -> None:
    """Strict name + shape match (ignoring the tied lm_head); one error listing every problem."""
    found = {k: v for k, v in found.items() if k not in IGNORED_KEYS}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        (k, expected[k], found[k]) for k in sorted(set(expected) & set(found)) if expected[k] != found[k]
    ]
    if not (missing or unexpected or wrong):
        return
    lines = [f"{where} does not match the architecture (sizes from {sizes_from}):"]
    for k, exp, got in wrong[:20]:
        lines.append(f"  shape mismatch: {k}: checkpoint {list(got)}, model expects {list(exp)}")
    if len(wrong) > 20:
        lines.append(f"  ... and {len(wrong) - 20} more shape mismatches")
    if missing:
        lines.append(f"  {len(missing)} tensors missing from the checkpoint, e.g. {', '.join(missing[:5])}")
    if unexpected:
        lines.append(
            f"  {len(unexpected)} unexpected tensors in the checkpoint, e.g. {', '.join(unexpected[:5])}"
        )
    lines.append(
        "  Fix: put the matching eagle_config.json (vision/text sizes) beside config.json, or correct "
        "config.json (action_head_cfg / backbone_cfg.select_layer) to what the weights were trained with."
    )
    raise CheckpointError("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------

_MODEL_TYPES = {"gr00t_n15": "gr00t_n1_5", "gr00t_n16": "Gr00tN1d6"}


def _declared_family(ckpt_dir: Path) -> str:
    """ "gr00t_n16" when config.json says model_type Gr00tN1d6, else "gr00t_n15" (its own checks
    then report anything else)."""
    p = ckpt_dir / CONFIG_NAME
    if not p.is_file():
        raise CheckpointError(f"{ckpt_dir}: no {CONFIG_NAME}; not a GR00T checkpoint directory")
    try:
        model_type = json.loads(p.read_text()).get("model_type")
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p}: not valid JSON ({e})") from e
    return "gr00t_n16" if model_type == _MODEL_TYPES["gr00t_n16"] else "gr00t_n15"


def load_pretrained(
    path_or_repo: str | Path,
    *,
    dtype: str | torch.dtype | None = torch.float32,
    device: str | torch.device | None = None,
    revision: str | None = None,
    zero_padded_rows: bool = True,
    attn_implementation: str = "sdpa",
    action_horizon: int | None = None,
    num_inference_timesteps: int | None = None,
    family: str | None = None,
) -> Gr00tN15:
    """Load a GR00T checkpoint (local hub-layout directory or hub repo id): N1.5, or N1.6 when its
    config.json says model_type Gr00tN1d6 (then gr00t_exp.model.n16.checkpoint.load_pretrained).

    :param dtype: weights dtype (None = as stored in the files).
    :param action_horizon: override the action chunk length (the position table has max_seq_len rows).
    :param family: "gr00t_n15" | "gr00t_n16" to insist on one (a mismatch is an error naming
        config.json's model_type); None = whatever config.json declares.
    """
    ckpt = resolve_checkpoint_dir(path_or_repo, revision)
    declared = _declared_family(ckpt)
    if family is not None and family != declared:
        raise CheckpointError(
            f"{ckpt / CONFIG_NAME}: model_type {_MODEL_TYPES[declared]!r} is a {declared} checkpoint but it "
            f"was asked to load as {family}. Fix: select the matching model (model={declared} / "
            "model.base_model_path of a checkpoint of the asked family), or leave the family to config.json"
        )
    if declared == "gr00t_n16":
        from gr00t_exp.model.n16.checkpoint import load_pretrained as load_n16

        return load_n16(  # type: ignore[return-value]
            ckpt,
            dtype=dtype,
            device=device,
            zero_padded_rows=zero_padded_rows,
            attn_implementation=attn_implementation,
            action_horizon=action_horizon,
            num_inference_timesteps=num_inference_timesteps,
        )
    cfg, sizes_from = read_config(
        ckpt, zero_padded_rows=zero_padded_rows, attn_implementation=attn_implementation
    )
    if action_horizon is not None:
        cfg.set_action_chunk(action_horizon=action_horizon)
    if num_inference_timesteps is not None:
        cfg.action_head_cfg.num_inference_timesteps = int(num_inference_timesteps)
    files = weight_files(ckpt)
    model = build_empty(cfg)
    check_keys_and_shapes(model_shapes(model), file_shapes(files), str(ckpt), sizes_from)

    target_dtype = parse_dtype(dtype)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    load_device = "cpu" if dev.type == "meta" else str(dev)
    for f in sorted(set(files.values())):
        part = load_file(str(f), device=load_device)
        part = {k: v for k, v in part.items() if k not in IGNORED_KEYS}
        if target_dtype is not None:
            part = {k: v.to(target_dtype) if v.is_floating_point() else v for k, v in part.items()}
        model.load_state_dict(part, strict=False, assign=True)
        del part
    left = [k for k, v in model.state_dict(keep_vars=True).items() if v.device.type == "meta"]
    if left:
        raise CheckpointError(f"{ckpt}: tensors not loaded: {left[:5]}")
    # assign=True keeps the loaded tensors as they are; restore the frozen pooling head flag.
    model.backbone.eagle_model.vision_model.vision_model.head.requires_grad_(False)
    model.to(dev)  # buffers (RoPE, position ids) to the device
    meta = ckpt / METADATA_PATH
    if meta.is_file():
        model.metadata = json.loads(meta.read_text())
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------
# Save
# ---------------------------------------------------------------------------------------------


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)  # torch.compile
    if hasattr(model, "get_base_model"):  # peft PeftModel
        model = model.get_base_model()
    return model


def hub_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors under the checkpoint names; LoRA adapters (peft) are merged in."""
    base = _unwrap(model)
    out: dict[str, torch.Tensor] = {}
    for k, v in base.state_dict().items():
        if ".lora_" in k or k.endswith(("lora_A", "lora_B")):
            continue
        out[k.replace(".base_layer.", ".")] = v
    for name, module in base.named_modules():
        if (
            hasattr(module, "base_layer")
            and hasattr(module, "get_delta_weight")
            and not getattr(module, "merged", False)
        ):
            weight = module.base_layer.weight.detach()
            for adapter in getattr(module, "active_adapters", []):
                if adapter in getattr(module, "lora_A", {}):
                    weight = weight + module.get_delta_weight(adapter).to(weight.dtype)
            out[f"{name}.weight"] = weight
    return out


def _shards(names: list[str], tensors: dict[str, torch.Tensor], max_bytes: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    size = 0
    for k in names:
        n = tensors[k].numel() * tensors[k].element_size()
        if shards[-1] and size + n > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(k)
        size += n
    return shards


def save_pretrained(
    model: nn.Module,
    out_dir: str | Path,
    metadata: dict | None = None,
    *,
    dtype: str | torch.dtype | None = None,
    max_shard_size: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write `model` in the hub layout, atomically (temporary directory renamed into place).

    :param metadata: experiment_cfg/metadata.json content ({embodiment_tag: {statistics, modalities,
        embodiment_tag}}); defaults to the metadata the model was loaded with, if any.
    :param dtype: storage dtype (None = the model's).
    """
    base = _unwrap(model)
    if getattr(base, "family", None) == "gr00t_n16":
        from gr00t_exp.model.n16.checkpoint import save_pretrained as save_n16

        return save_n16(model, out_dir, metadata, dtype=dtype, max_shard_size=max_shard_size)
    if not isinstance(base, Gr00tN15):
        raise TypeError(
            f"save_pretrained expects a Gr00tN15 (optionally peft/compile-wrapped), got {type(base)}"
        )
    cfg: Gr00tN15Config = base.config
    tensors = hub_state_dict(model)
    check_keys_and_shapes(
        model_shapes(build_empty(cfg)),
        {k: tuple(v.shape) for k, v in tensors.items()},
        "the model being saved",
        "its own config",
    )
    target = parse_dtype(dtype)
    store_dtype = target or base.dtype
    names = list(tensors)
    shards = _shards(names, tensors, max_shard_size)
    metadata = metadata if metadata is not None else base.metadata

    texts = {
        CONFIG_NAME: json.dumps(cfg.to_hub_dict(dtype_name(store_dtype)), indent=2) + "\n",
        EAGLE_CONFIG_NAME: json.dumps(cfg.eagle_dict(), indent=4) + "\n",
    }
    if metadata is not None:
        texts[METADATA_PATH] = json.dumps(metadata, indent=2) + "\n"
    return write_hub_layout(out_dir, tensors, shards, target, texts)


def write_hub_layout(
    out_dir: str | Path,
    tensors: dict[str, torch.Tensor],
    shards: list[list[str]],
    target: torch.dtype | None,
    texts: dict[str, str],
) -> Path:
    """The hub layout both families share: `tensors` as safetensors shards (+ the index when there
    are several), cast to `target` (floating tensors only), and `texts` (relative path -> content:
    config.json, eagle_config.json, metadata / processor files). Written into a temporary folder
    beside `out_dir` and swapped in at the end, so a failed save never leaves half a checkpoint."""
    out = Path(out_dir).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        weight_map: dict[str, str] = {}
        total = 0
        for i, keys in enumerate(shards, start=1):
            fname = WEIGHTS_NAME if len(shards) == 1 else f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            part = {}
            for k in keys:
                t = tensors[k].detach()
                if target is not None and t.is_floating_point():
                    t = t.to(target)
                part[k] = t.to("cpu").contiguous()
                total += part[k].numel() * part[k].element_size()
                weight_map[k] = fname
            save_file(part, str(tmp / fname), metadata={"format": "pt"})
            del part
        if len(shards) > 1:
            index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
            (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
        for rel, text in texts.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace_dir(src: Path, dst: Path) -> None:
    """Move `src` to `dst`; an existing `dst` is swapped out first and removed afterwards."""
    if not dst.exists():
        os.replace(src, dst)
        return
    old = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(dst, old)
    try:
        os.replace(src, dst)
    except BaseException:
        os.replace(old, dst)
        raise
    shutil.rmtree(old, ignore_errors=True)
