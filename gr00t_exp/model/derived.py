"""Tensors derived from parameters (fused weights, timestep-only activations), kept between calls.

Inference reuses things that depend on the weights alone: the concatenated q/k/v weights of a
self-attention block, the AdaLN modulations of the fixed denoising timesteps. `DerivedCache` keeps
one such value and rebuilds it when any parameter it was built from changed: a new storage
(`model.to(...)`, `p.data = ...`, a checkpoint load into new tensors), an in-place update (optimiser
steps and `load_state_dict` bump the tensor's version counter), another dtype or device.

Only outside autograd: with gradients enabled (training) the value is always rebuilt, so gradients
flow to the parameters; under torch.compile it is rebuilt too (the compiler folds what it can and
must not guard on version counters).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Generic, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")

_state = threading.local()


@contextlib.contextmanager
def plain_path() -> Iterator[None]:
    """Inside: no fused weights, no cached timestep tensors (the reference computation), e.g. to
    check the fast path against it or to benchmark one against the other. Per thread."""
    before = getattr(_state, "off", False)
    _state.off = True
    try:
        yield
    finally:
        _state.off = before


# Set while Inductor compiles with `freezing` (model/inference.py): parameters are constants
# then, so weight-only expressions (the q/k/v concatenation, the timestep modulations) are folded
# at compile time and the fused forms cost nothing per call. A module global: the compiler reads
# it as a constant.
FOLD_UNDER_COMPILE = False


@contextlib.contextmanager
def folding_under_compile() -> Iterator[None]:
    global FOLD_UNDER_COMPILE
    before = FOLD_UNDER_COMPILE
    FOLD_UNDER_COMPILE = True
    try:
        yield
    finally:
        FOLD_UNDER_COMPILE = before


def caching_enabled() -> bool:
    """Whether the inference forms (fused weights, cached timestep tensors) are used now: no
    autograd, not inside `plain_path`; under torch.compile only while it folds constants."""
    if torch.is_grad_enabled():
        return False
    if torch.compiler.is_compiling():
        return FOLD_UNDER_COMPILE
    return not getattr(_state, "off", False)


def _param_key(params: Sequence[Tensor]) -> tuple:
    # data_ptr + version + dtype + device identify the exact values a parameter holds (a version
    # counter changes on every in-place write, a new tensor has a new storage).
    return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)


class DerivedCache(Generic[T]):
    """Values built from `params`, one per `extra` key (e.g. the step count), reused while the
    parameters are unchanged and autograd is off (`caching_enabled`)."""

    def __init__(self, max_entries: int = 8) -> None:
        self._entries: dict[Hashable, tuple[tuple, T]] = {}
        self._max = max_entries

    def get(self, params: Sequence[Tensor], build: Callable[[], T], extra: Hashable = None) -> T:
        if torch.compiler.is_compiling() or not caching_enabled():
            return build()  # traced (and, frozen, folded) by the compiler; no version guards
        key = _param_key(params)
        hit = self._entries.get(extra)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = build()
        if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
            # Built inside a CUDA-graph capture: its kernels have not run, the memory holds
            # nothing yet and belongs to the graph's pool. Use it in the graph, never keep it.
            return value
        if extra not in self._entries and len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)))  # oldest first: bounded memory
        self._entries[extra] = (key, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    # The cache is runtime state, never part of a copy or a pickle (DataLoader workers, deepcopy
    # of a model for EMA): a copy starts empty and rebuilds on first use.
    def __deepcopy__(self, memo: dict) -> DerivedCache[T]:
        return DerivedCache(self._max)

    def __getstate__(self) -> dict:
        return {"_entries": {}, "_max": self._max}
