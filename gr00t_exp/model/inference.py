"""`get_action` replayed from CUDA graphs: the whole call (backbone, VL self-attention, the Euler
loop) captured once per input signature and replayed, so a call costs one graph launch instead of
~3,000 kernel launches from Python.

    fast = GraphedGetAction(model, mode="cudagraph")       # or mode="compile" (Inductor kernels)
    fast.warmup(batch)                                     # capture now (else on first use)
    action = fast(batch, init_noise=None)                  # (B, H, A), a fresh tensor

- `cudagraph`: the eager kernels, captured as they are (no code generation; a capture costs a few
  eager calls). `compile`: `torch.compile` (Inductor, its own CUDA graphs off) first, then the
  compiled kernels captured the same way; the first call per signature compiles (minutes).
- A signature is the shapes and dtypes of the inputs (batch size, views, prompt length) and
  whether the batch has left padding: every new one is captured on first use; at most
  `max_graphs` are kept (least recently used dropped).
- Inputs are copied into the graph's static buffers; the initial noise is drawn into its buffer
  before the replay (or copied from `init_noise`); the result is cloned out of the graph.
- bf16 autocast (`autocast=True`) is part of the capture. Not thread-safe: one caller at a time
  (the policy servers run the model on one worker thread).
- A graph holds the addresses of the weights and of the values derived from them at capture
  (fused q/k/v, cached timestep modulations: model/derived.py), so after new weights (loaded in
  place or not, `model.to(...)`) call `reset()`: the next call captures again and the derived
  values are rebuilt from the new weights.
- `prepare` (with the batch keys it reads, `prepare_keys`) runs inside the graph before
  `get_action`: serving passes the device-side image crop / resize / normalisation, so the raw
  uint8 views are the graph's input and those ~20 kernels replay with the model. A key holding a
  dict (the `augment` parameters) is flattened: its tensors become static buffers, its other
  values (crop and output sizes) part of the signature.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gr00t_exp.model.derived import folding_under_compile
from gr00t_exp.model.embodiment_mlp import UNIFORM_EMBODIMENT_KEY

log = logging.getLogger(__name__)

MODES = ("cudagraph", "compile")
# A flattened dict entry of the batch: "<key>.<entry>".
_SEP = "."
# What get_action reads from the batch.
INPUT_KEYS = ("eagle_input_ids", "eagle_attention_mask", "eagle_pixel_values", "state", "embodiment_id")


def _stack_images(key: str, images: list | tuple) -> Tensor:
    """N1.6's per-image pixel values ((1, 3, H, W) each) as one (N, 3, H, W) buffer, which its
    backbone takes as the same computation when every image has one size."""
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) != 1:
        raise ValueError(
            f"{key}: images of sizes {sorted(shapes)} in one batch; the graphed get_action needs one size "
            "per batch (resize the views to one size, or deploy.policy.fast_path=off)"
        )
    return torch.cat(list(images))


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: dict[str, Tensor]
    consts: dict[str, object]
    noise: Tensor
    output: Tensor
    capture_s: float


class GraphedGetAction:
    def __init__(
        self,
        model: nn.Module,
        mode: str = "cudagraph",
        num_steps: int | None = None,
        autocast: bool = True,
        max_graphs: int = 16,
        warmup_iters: int = 2,
        freeze: bool = False,
        prepare: Callable[[dict], dict] | None = None,
        prepare_keys: tuple[str, ...] = (),
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"fast path mode must be one of {MODES}, got {mode!r}")
        if model.device.type != "cuda":
            raise ValueError(f"CUDA graphs need the model on a CUDA device, it is on {model.device}")
        self.model = model
        self.mode = mode
        self.num_steps = num_steps
        self.autocast = autocast
        self.max_graphs = max_graphs
        self.warmup_iters = warmup_iters
        # compile: Inductor `freezing` (weights as constants: folds the fused q/k/v weights and the
        # timestep modulations at compile time; weights changed later are not seen: `reset()`).
        self.freeze = freeze and mode == "compile"
        self.prepare = prepare
        self._keys = INPUT_KEYS + tuple(k for k in prepare_keys if k not in INPUT_KEYS)
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        head_cfg = model.action_head.config
        self._chunk = (head_cfg.action_horizon, head_cfg.action_dim)
        # torch.compile without its own CUDA graphs: the capture below is the one graph. (Its
        # max-autotune-no-cudagraphs mode did not finish compiling the full-size N1.5 in 8 minutes
        # on an H200: docs/benchmarks.md.)
        self._fn: Callable[..., dict[str, Tensor]] = (
            torch.compile(model.get_action, dynamic=False) if mode == "compile" else model.get_action
        )

    # -- signatures --------------------------------------------------------------------------
    def _inputs(self, batch: Mapping[str, object]) -> tuple[dict[str, Tensor], dict[str, object]]:
        """(tensors, other values) the graph reads from `batch`, dict entries flattened. An all-ones
        attention mask is dropped (host check, one sync before any work is queued) so the LLM takes
        its unmasked causal kernel, as eager does."""
        tensors: dict[str, Tensor] = {}
        consts: dict[str, object] = {}
        if batch.get(UNIFORM_EMBODIMENT_KEY) is not None:  # the one-embodiment mark (an int)
            consts[UNIFORM_EMBODIMENT_KEY] = batch[UNIFORM_EMBODIMENT_KEY]
        for k in self._keys:
            v = batch.get(k)
            if isinstance(v, (list, tuple)):
                v = _stack_images(k, v)
            if isinstance(v, Mapping):
                for name, x in v.items():
                    (tensors if torch.is_tensor(x) else consts)[f"{k}{_SEP}{name}"] = x
            elif v is not None:
                tensors[k] = v  # type: ignore[assignment]
        mask = tensors.get("eagle_attention_mask")
        if mask is not None and bool(mask.all()):
            del tensors["eagle_attention_mask"]
        return tensors, consts

    @staticmethod
    def _signature(inputs: Mapping[str, Tensor], consts: Mapping[str, object]) -> tuple:
        shapes = tuple((k, tuple(v.shape), v.dtype, str(v.device)) for k, v in sorted(inputs.items()))
        return shapes + tuple(sorted((k, repr(v)) for k, v in consts.items()))

    @staticmethod
    def _nest(inputs: Mapping[str, Tensor], consts: Mapping[str, object]) -> dict:
        """The batch as `prepare` / get_action read it: flattened entries back into their dicts."""
        out: dict = {}
        for flat in (inputs, consts):
            for k, v in flat.items():
                key, sep, name = k.partition(_SEP)
                if sep:
                    out.setdefault(key, {})[name] = v
                else:
                    out[k] = v
        return out

    @property
    def signatures(self) -> list[tuple]:
        return list(self._graphs)

    def reset(self) -> None:
        self._graphs.clear()
        if self.mode == "compile":
            torch._dynamo.reset()  # frozen weights / specialised code of the old model

    # -- capture ---------------------------------------------------------------------------
    def _run(self, inputs: dict[str, Tensor], consts: dict[str, object], noise: Tensor) -> Tensor:
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()
        with torch.inference_mode():
            batch = self._nest(inputs, consts)
            if self.prepare is not None:
                batch = self.prepare(batch)
            with amp:
                return self._fn(batch, init_noise=noise, num_steps=self.num_steps)["action_pred"]

    def _compile_context(self) -> contextlib.AbstractContextManager:
        if not self.freeze:
            return contextlib.nullcontext()
        import torch._inductor.config as inductor_config

        stack = contextlib.ExitStack()
        stack.enter_context(inductor_config.patch(freezing=True))
        stack.enter_context(folding_under_compile())
        return stack

    def _capture(self, inputs: dict[str, Tensor], consts: dict[str, object]) -> _Graph:
        t0 = time.perf_counter()
        static = {k: v.to(self.model.device, copy=True) for k, v in inputs.items()}
        b = static["state"].shape[0]
        noise = torch.randn(b, *self._chunk, device=self.model.device, dtype=self.model.dtype)
        # Warm up on a side stream (lazy inits, cuBLAS workspaces, the model's derived-weight
        # caches, Inductor compilation): nothing of that may happen inside the capture.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), self._compile_context():
            for _ in range(self.warmup_iters):
                self._run(static, consts, noise)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = self._run(static, consts, noise)
        torch.cuda.synchronize()
        g = _Graph(graph, static, dict(consts), noise, output, time.perf_counter() - t0)
        log.info(
            "captured get_action (%s, autocast=%s) for %s in %.1f s",
            self.mode,
            self.autocast,
            {k: tuple(v.shape) for k, v in static.items()},
            g.capture_s,
        )
        return g

    def _graph_for(self, inputs: dict[str, Tensor], consts: dict[str, object]) -> _Graph:
        sig = self._signature(inputs, consts)
        g = self._graphs.get(sig)
        if g is None:
            if len(self._graphs) >= self.max_graphs:
                self._graphs.popitem(last=False)
            g = self._graphs[sig] = self._capture(inputs, consts)
        else:
            self._graphs.move_to_end(sig)
        return g

    def warmup(self, batch: Mapping[str, object]) -> float:
        """Capture the graph of `batch`'s signature now; returns the capture time in seconds."""
        inputs, consts = self._inputs(batch)
        if self._signature(inputs, consts) in self._graphs:
            return 0.0
        return self._graph_for(inputs, consts).capture_s

    # -- call ------------------------------------------------------------------------------
    def __call__(self, batch: Mapping[str, object], init_noise: Tensor | None = None) -> Tensor:
        inputs, consts = self._inputs(batch)
        g = self._graph_for(inputs, consts)
        for k, v in inputs.items():
            g.inputs[k].copy_(v, non_blocking=True)
        if init_noise is None:
            g.noise.normal_()
        else:
            g.noise.copy_(init_noise, non_blocking=True)
        g.graph.replay()
        return g.output.clone()
