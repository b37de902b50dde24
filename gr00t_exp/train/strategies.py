"""Lightning strategies the `trainer` configs instantiate (`conf/trainer/fsdp.yaml`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.utils import get_class
from pytorch_lightning.strategies import FSDPStrategy

# One FSDP unit per transformer block: each block is its own FlatParameter, so parameters are
# really sharded (not one model-sized unit) and each unit is all-frozen or all-trainable.
DEFAULT_WRAP = (
    "transformers.models.siglip.modeling_siglip.SiglipEncoderLayer",
    "transformers.models.qwen3.modeling_qwen3.Qwen3DecoderLayer",
    "gr00t_exp.model.dit.TransformerBlock",
)


def fsdp(wrap: Sequence[str] | None = DEFAULT_WRAP, **kwargs: Any) -> FSDPStrategy:
    """FSDPStrategy with an auto-wrap policy over the classes named in `wrap` (dotted paths).

    `wrap=null` wraps nothing (one unit: the whole model). Other keyword arguments go to
    FSDPStrategy unchanged (sharding_strategy, use_orig_params, state_dict_type, cpu_offload...).
    """
    policy = {get_class(path) for path in wrap} if wrap else None
    return FSDPStrategy(auto_wrap_policy=policy, **kwargs)
