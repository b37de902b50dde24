"""Model benchmark: get_action latency and one training step, eager and compiled.

    python run.py mode=bench bench=model model=gr00t_n15 model.random_init=true
    python -m gr00t_exp.bench.model model=gr00t_n15 model.random_init=true   # same, without run.py

Method (the one upstream's figures in docs/benchmarks.md were measured with, so they compare):
- Inference: bf16 weights, bf16 autocast, TF32 on, batch 1, one 224x224 view, a short prompt, 4
  denoising steps, inputs already on the device. Latency = host wall time of one call with a device
  synchronize before and after (p50 / p90 over `bench.iters` calls after `bench.warmup`), split into
  backbone and action head (prepare + 4 Euler steps); CUDA-event GPU time is recorded beside it.
- Variants: `eager`; `cudagraphs` (torch.compile backend="cudagraphs": captured eager kernels, no
  codegen); `inductor` (torch.compile mode `bench.params.compile_mode`, "reduce-overhead" =
  Inductor + CUDA graphs); `graph` (the serving fast path, model/inference.py: the whole
  get_action captured in one CUDA graph, eager kernels) and `graphcompile` (the same capture of
  Inductor kernels; `graphfreeze`: with Inductor freezing, weights folded as constants); suffix `_noamp` = bf16 without autocast, `_plain` = without the model's
  inference caches (fused q/k/v, cached timestep tensors: the computation before them), e.g.
  `eager_plain_noamp`. Default: eager, cudagraphs_noamp, inductor. Each output is compared with eager on the same initial noise; peak
  memory is reset before each variant.
- Training: batch `bench.batch_size` (32), default tuning flags (apply_tuning), frozen parts in bf16,
  trained parts fp32, bf16 autocast, TF32, fused AdamW (betas 0.95/0.999, wd 1e-5), grad clip 1.0;
  step = zero_grad + forward + backward + clip + optimizer step; samples/s = batch / p50 step time.
  `train_modes` (default eager, full): eager, full (torch.compile of the whole forward, default
  mode), full_ro (the same, mode="reduce-overhead": forward and backward replayed from CUDA
  graphs), blocks (regional compilation: each transformer block compiled, one compile per type);
  suffix `_gather` (e.g. `full_gather`): the batch without its `embodiment_id_uniform` mark, so the
  projectors gather per-sample weights as for a mixed-embodiment batch (the marked batch is what
  training feeds a one-embodiment run).

`bench.params` keys (all optional): variants (list; suffix `_noamp` = bf16 without autocast),
compile_mode, train (bool), train_modes (list), train_iters, prompt, profile (bool: profiler tables
of one eager get_action and one training step of each of `profile_train_modes`, default [eager]),
profile_graphed (bool: a kernel table of each graph variant, default false).
Results: `<run dir>/bench_model.json` (rewritten after every phase) and a printed table.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from omegaconf import DictConfig, OmegaConf
from torch.profiler import ProfilerActivity, profile

from gr00t_exp.config.compose import compose_config
from gr00t_exp.model.build import build_model
from gr00t_exp.model.derived import plain_path
from gr00t_exp.model.embodiment_mlp import UNIFORM_EMBODIMENT_KEY, mark_uniform_embodiment
from gr00t_exp.model.inference import GraphedGetAction
from gr00t_exp.model.n16.processor import Gr00tN16Processor, N16Sample
from gr00t_exp.model.processor import ASSETS_DIR, Gr00tProcessor
from gr00t_exp.model.tuning import apply_tuning, parameter_summary, set_frozen_modules_to_eval

log = logging.getLogger(__name__)

DEFAULT_PROMPT = "pick up the apple and place it in the basket"
GiB = 1024**3


# --------------------------------------------------------------------------------- helpers
def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _percentiles(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs, dtype=np.float64)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "n": len(xs),
    }


def time_fn(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int) -> dict[str, float]:
    """Wall time (synchronised) and, on CUDA, event-measured GPU time per call, in ms."""
    for _ in range(warmup):
        fn()
    _sync(device)
    wall, gpu = [], []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.perf_counter()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            wall.append((time.perf_counter() - t0) * 1e3)
            gpu.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            wall.append((time.perf_counter() - t0) * 1e3)
    out = _percentiles(wall)
    if gpu:
        out["event_p50_ms"] = float(statistics.median(gpu))
    return out


def make_batch(
    processor, batch_size: int, prompt: str, device: torch.device, action_dim: int = 32, horizon: int = 16
) -> dict[str, torch.Tensor]:
    """A model batch of `batch_size` samples, one random 224x224 view each (seeded)."""
    rng = np.random.default_rng(0)
    images = [[rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8)] for _ in range(batch_size)]
    batch = processor(images, [prompt] * batch_size)
    g = torch.Generator().manual_seed(0)
    batch["state"] = torch.randn(batch_size, 1, 64, generator=g)
    batch["state_mask"] = torch.ones(batch_size, 1, 64, dtype=torch.bool)
    batch["action"] = torch.randn(batch_size, horizon, action_dim, generator=g)
    mask = torch.zeros(batch_size, horizon, action_dim, dtype=torch.bool)
    mask[..., :26] = True
    batch["action_mask"] = mask
    batch["embodiment_id"] = torch.full((batch_size,), 31, dtype=torch.long)
    mark_uniform_embodiment(batch)  # as training marks its batches (train/module.py)
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def make_batch_n16(
    processor: Gr00tN16Processor, model, batch_size: int, prompt: str, device: torch.device
) -> dict[str, Any]:
    """An N1.6 batch: one random 256x256 view per sample (81 image tokens after the processor's
    252x252 resize), normalised-range state and action of the model's widths, new_embodiment."""
    cfg = model.config
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    emb = processor.embodiment_id("new_embodiment")
    samples = [
        N16Sample(
            text=prompt,
            images=[rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)],
            embodiment_id=emb,
            state=torch.rand(1, cfg.max_state_dim, generator=g).numpy() * 2 - 1,
            action=torch.rand(cfg.action_horizon, cfg.max_action_dim, generator=g).numpy() * 2 - 1,
            action_mask=np.ones((cfg.action_horizon, cfg.max_action_dim)),
        )
        for _ in range(batch_size)
    ]
    batch = mark_uniform_embodiment(processor.collate(samples))
    return {
        k: ([t.to(device) for t in v] if isinstance(v, list) else v.to(device) if torch.is_tensor(v) else v)
        for k, v in batch.items()
    }


def _noise_shape(model) -> tuple[int, int]:
    """(action_horizon, action width) of the model's flow-matching chunk."""
    if getattr(model, "family", "") == "gr00t_n16":
        return model.config.action_horizon, model.config.max_action_dim
    cfg = model.action_head.config
    return cfg.action_horizon, cfg.action_dim


def _compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    a, b = a.float(), b.float()
    return {
        "max_abs_diff": float((a - b).abs().max()),
        "rel_l2_diff": float((a - b).norm() / b.norm().clamp_min(1e-12)),
    }


class Results:
    """Collects results and rewrites the JSON after each phase (a timed-out run keeps what it had)."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = path
        self.data: dict[str, Any] = {"meta": meta, "inference": {}, "training": {}, "errors": {}}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


def _meta(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "host": platform.node(),
        "device": str(device),
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "bench": OmegaConf.to_container(cfg.bench, resolve=True),
    }
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
    meta["transformers"] = transformers.__version__
    return meta


# ------------------------------------------------------------------------------ inference
def _amp(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def bench_inference(
    model,
    batch,
    device,
    warmup: int,
    iters: int,
    variants: list[str],
    compile_mode: str,
    res,
    profile_dir: Path | None = None,
):
    """Latency of get_action (bf16 weights) per variant; split backbone / action head for eager.

    Variant names: eager | cudagraphs | inductor, with suffix `_noamp` = no autocast (pure bf16
    activations; upstream runs bf16 weights under autocast, which keeps LayerNorm/softmax outputs in
    fp32 and so adds a cast before most matmuls). Every variant is compared with eager + autocast.
    `profile_dir`: also a profiler table of each graph variant's kernels (one call of the captured
    function outside its graph, `profile_<variant>.txt`).
    """
    model.eval()
    head = model.action_head
    # The backbone / action-head split timing uses N1.5's head API (prepare(features, state, id)).
    split = getattr(model, "family", "gr00t_n15") != "gr00t_n16"
    g = torch.Generator(device="cpu").manual_seed(1)
    noise = torch.randn(1, *_noise_shape(model), generator=g).to(device, torch.bfloat16)

    def eager_call(amp=True):
        with torch.inference_mode(), _amp(device, amp):
            return model.get_action(batch, init_noise=noise)["action_pred"]

    ref = eager_call().clone()
    for v in variants:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            kind, *flags = v.split("_")
            amp = "noamp" not in flags
            plain = plain_path() if "plain" in flags else contextlib.nullcontext()
            with plain:
                if kind in ("graph", "graphcompile", "graphfreeze"):
                    prof = profile_dir / f"profile_{v}.txt" if profile_dir is not None else None
                    out = _bench_graphed(model, batch, noise, device, warmup, iters, kind, amp, ref, prof)
                elif kind == "eager" and not split:
                    out = {
                        "get_action": time_fn(lambda amp=amp: eager_call(amp), device, warmup, iters),
                        "vs_eager": _compare(eager_call(amp).clone(), ref),
                    }
                elif kind == "eager":
                    with torch.inference_mode(), _amp(device, amp):
                        feats = model.backbone(batch)["backbone_features"]

                    def backbone_call(amp=amp):
                        with torch.inference_mode(), _amp(device, amp):
                            return model.backbone(batch)["backbone_features"]

                    def head_call(amp=amp, feats=feats):
                        with torch.inference_mode(), _amp(device, amp):
                            ctx = head.prepare(feats, batch["state"], batch["embodiment_id"])
                            return head.sample(ctx, batch["embodiment_id"], noise)[0]

                    out = {
                        "get_action": time_fn(lambda amp=amp: eager_call(amp), device, warmup, iters),
                        "backbone": time_fn(backbone_call, device, warmup, iters),
                        "action_head": time_fn(head_call, device, warmup, iters),
                        "vs_eager": _compare(eager_call(amp).clone(), ref),
                    }
                else:
                    kwargs = {"backend": "cudagraphs"} if kind == "cudagraphs" else {"mode": compile_mode}
                    torch._dynamo.reset()
                    compiled = torch.compile(model.get_action, dynamic=False, **kwargs)

                    def call(compiled=compiled, amp=amp):
                        with torch.inference_mode(), _amp(device, amp):
                            return compiled(batch, init_noise=noise)["action_pred"]

                    t0 = time.perf_counter()
                    first = call().clone()
                    _sync(device)
                    compile_s = time.perf_counter() - t0
                    out = {"get_action": time_fn(call, device, warmup, iters), "compile_s": compile_s}
                    out["vs_eager"] = _compare(call().clone(), ref)
                    out["first_call_vs_eager"] = _compare(first, ref)
                    if kind == "inductor":
                        out["compile_mode"] = compile_mode
            out["autocast"] = amp
            if device.type == "cuda":
                out["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / GiB
            res.data["inference"][v] = out
            log.info("inference %s: %s", v, out)
        except Exception as e:  # keep the other variants' numbers
            log.exception("inference variant %s failed", v)
            res.data["errors"][f"inference_{v}"] = f"{type(e).__name__}: {e}"
        res.save()


def _bench_graphed(
    model, batch, noise, device, warmup: int, iters: int, kind: str, amp: bool, ref, profile_path=None
):
    """The serving fast path's graphed get_action (model/inference.py): capture (or compile + capture)
    time, replay latency (inputs copied into the graph's buffers each call, as serving does)."""
    mode = "cudagraph" if kind == "graph" else "compile"
    torch._dynamo.reset()
    fast = GraphedGetAction(model, mode=mode, autocast=amp, freeze=kind == "graphfreeze")
    t0 = time.perf_counter()
    first = fast(batch, init_noise=noise)
    _sync(device)
    out: dict[str, Any] = {"capture_s": time.perf_counter() - t0, "mode": mode}
    out["get_action"] = time_fn(lambda: fast(batch, init_noise=noise), device, warmup, iters)
    out["vs_eager"] = _compare(fast(batch, init_noise=noise), ref)
    out["first_call_vs_eager"] = _compare(first, ref)
    if profile_path is not None:
        g = next(iter(fast._graphs.values()))
        out["profile"] = _profile(lambda: fast._run(g.inputs, g.consts, g.noise), device, profile_path)
    fast.reset()
    return out


def _profile(fn: Callable[[], Any], device: torch.device, path: Path) -> dict[str, Any]:
    """Profile one call of `fn` (already warm): table of top ops by device time + kernel totals."""
    path.parent.mkdir(parents=True, exist_ok=True)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    _sync(device)
    with profile(activities=acts) as prof:
        fn()
        _sync(device)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    path.write_text(prof.key_averages().table(sort_by=sort, row_limit=60, max_name_column_width=90))
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    return {"kernels": len(kernels), "kernel_time_ms": sum(e.device_time for e in kernels) / 1e3}


def profile_inference(model, batch, device, out_dir: Path, res) -> None:
    """torch.profiler table of one eager get_action (bf16 autocast): kernel count and top ops."""
    head = model.action_head
    noise = torch.randn(1, head.config.action_horizon, head.config.action_dim, device=device)

    def call():
        with torch.inference_mode(), _amp(device, True):
            return model.get_action(batch, init_noise=noise)

    for _ in range(3):
        call()
    res.data["inference"]["eager_profile"] = _profile(call, device, out_dir / "profile_get_action.txt")
    with plain_path():  # without the inference caches (fused q/k/v, cached timestep tensors)
        call()
        res.data["inference"]["eager_plain_profile"] = _profile(
            call, device, out_dir / "profile_get_action_plain.txt"
        )
    res.save()


# ------------------------------------------------------------------------------- training
def _compile_blocks(model) -> int:
    """Regional compilation: compile each repeated transformer block in place (one compile per type)."""
    em = model.backbone.eagle_model
    groups = [
        em.vision_model.vision_model.encoder.layers,
        em.language_model.model.layers,
        model.action_head.vl_self_attention.transformer_blocks,
        model.action_head.model.transformer_blocks,
    ]
    n = 0
    for group in groups:
        for block in group:
            block.compile()
            n += 1
    return n


def bench_training(
    model, cfg: DictConfig, batch, device, iters: int, mode: str, res, profile_dir: Path | None = None
) -> None:
    """One training step per call, `mode`: eager | full (torch.compile of the whole forward) | blocks
    (regional: each transformer block compiled). `profile_dir`: also write a profiler table of one step."""
    key = mode
    if mode.endswith("_gather"):  # the per-sample gather of the projector weights (mixed batches)
        mode = mode.removesuffix("_gather")
        batch = {k: v for k, v in batch.items() if k != UNIFORM_EMBODIMENT_KEY}
    apply_tuning(model, cfg.model)
    # Frozen parts in bf16 (no master weights needed), trained parts in fp32.
    for p in model.parameters():
        p.data = p.data.to(torch.float32 if p.requires_grad else torch.bfloat16)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params,
        lr=1e-4,
        betas=(0.95, 0.999),
        eps=1e-8,
        weight_decay=1e-5,
        fused=device.type == "cuda",
    )
    model.train()
    set_frozen_modules_to_eval(model)
    n_compiled = _compile_blocks(model) if mode == "blocks" else 0
    # "full": compile forward itself (hooks are not traced; frozen parts were put in eval above).
    # "full_ro": the same with mode="reduce-overhead" (the compiled forward and backward replayed
    # from CUDA graphs; each step is marked so the graphs' outputs may be reused).
    compile_kw = {"full": {}, "full_ro": {"mode": "reduce-overhead"}}
    fwd = torch.compile(model.forward, **compile_kw[mode]) if mode in compile_kw else model
    mark_step = mode == "full_ro"
    amp = torch.autocast(device.type, dtype=torch.bfloat16)

    def step():
        if mark_step:
            torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=True)
        with amp:
            loss = fwd(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        return loss

    try:
        t0 = time.perf_counter()
        loss0 = float(step().detach())
        _sync(device)
        first_s = time.perf_counter() - t0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        timing = time_fn(step, device, warmup=2, iters=iters)
        bs = batch["state"].shape[0]
        out = {
            "step": timing,
            "samples_per_s": bs / (timing["p50_ms"] / 1e3),
            "batch_size": bs,
            "first_step_s": first_s,
            "first_loss": loss0,
            "trainable_params": sum(p.numel() for p in params),
            "compiled_blocks": n_compiled,
            "summary": [vars(r) for r in parameter_summary(model)],
        }
        if device.type == "cuda":
            out["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / GiB
            out["held_between_steps_gib"] = torch.cuda.memory_allocated(device) / GiB
        if profile_dir is not None:
            out["profile"] = _profile(step, device, profile_dir / f"profile_train_{key}.txt")
        res.data["training"][key] = out
        log.info("training %s: %s", key, {k: v for k, v in out.items() if k != "summary"})
    except Exception as e:
        log.exception("training %s failed", key)
        res.data["errors"][f"training_{key}"] = f"{type(e).__name__}: {e}"
    finally:
        opt.state.clear()
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    res.save()


# ------------------------------------------------------------------------------------ table
def format_table(data: dict[str, Any]) -> str:
    lines = ["| measure | variant | p50 ms | p90 ms | other |", "| --- | --- | --- | --- | --- |"]
    for v, r in data.get("inference", {}).items():
        if v.endswith("_profile"):
            lines.append(
                f"| get_action kernels | {v.removesuffix('_profile')} | | | {r['kernels']} kernels, "
                f"{r['kernel_time_ms']:.1f} ms GPU |"
            )
            continue
        for part in ("get_action", "backbone", "action_head"):
            if part in r:
                t = r[part]
                other = []
                if "event_p50_ms" in t:
                    other.append(f"GPU {t['event_p50_ms']:.1f} ms")
                if part == "get_action" and "peak_allocated_gib" in r:
                    other.append(f"peak {r['peak_allocated_gib']:.2f} GiB")
                if part == "get_action" and "compile_s" in r:
                    other.append(f"compile {r['compile_s']:.0f} s")
                if part == "get_action" and "capture_s" in r:
                    other.append(f"capture {r['capture_s']:.1f} s")
                if part == "get_action" and v != "eager" and "vs_eager" in r:
                    other.append(f"rel diff vs eager {r['vs_eager']['rel_l2_diff']:.1e}")
                lines.append(f"| {part} | {v} | {t['p50_ms']:.1f} | {t['p90_ms']:.1f} | {', '.join(other)} |")
    for k, r in data.get("training", {}).items():
        t = r["step"]
        mem = f", peak {r['peak_allocated_gib']:.1f} GiB" if "peak_allocated_gib" in r else ""
        lines.append(
            f"| train step (bs {r['batch_size']}) | {k} | {t['p50_ms']:.1f} | {t['p90_ms']:.1f} | "
            f"{r['samples_per_s']:.1f} samples/s{mem} |"
        )
        if "profile" in r:
            pr = r["profile"]
            lines.append(
                f"| train step kernels | {k} | | | {pr['kernels']} kernels, {pr['kernel_time_ms']:.1f} ms GPU |"
            )
    for k, e in data.get("errors", {}).items():
        lines.append(f"| error | {k} | | | {e[:120]} |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- run
def run(cfg: DictConfig) -> int:
    params = dict(cfg.bench.params or {})
    device = _device(cfg.bench.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(int(cfg.seed))
    out_dir = Path(cfg.paths.output_dir)
    res = Results(out_dir / "bench_model.json", _meta(cfg, device))
    variants = list(params.get("variants", ["eager", "cudagraphs_noamp", "inductor"]))
    if device.type != "cuda":
        variants = [v for v in variants if not v.startswith("cudagraphs")]
    prompt = str(params.get("prompt", DEFAULT_PROMPT))

    warmup, iters = int(cfg.bench.warmup), int(cfg.bench.iters)
    compile_mode = str(params.get("compile_mode", "reduce-overhead"))

    def build_bf16():
        t0 = time.perf_counter()
        m = build_model(cfg.model, device=device).to(device)
        res.data["meta"]["parameters"] = sum(p.numel() for p in m.parameters())
        m.to(torch.bfloat16)  # inference in bf16 weights, as upstream serves it
        _sync(device)
        res.data["meta"]["build_s"] = time.perf_counter() - t0
        if device.type == "cuda":
            res.data["meta"]["weights_gib"] = torch.cuda.memory_allocated(device) / GiB
        return m

    # Cheap phases first, Inductor last: a run cut off by its time limit keeps the most.
    model = build_bf16()
    if getattr(model, "family", "gr00t_n15") == "gr00t_n16":
        # No checkpoint processor files with a random-init model: the shipped tokenizer, no stats
        # (the batch is built already normalised).
        n16_proc = Gr00tN16Processor(_n16_tokenizer(), {}, {})

        def batch_of(size: int) -> dict[str, Any]:
            return make_batch_n16(n16_proc, model, size, prompt, device)
    else:
        processor = Gr00tProcessor.from_pretrained()

        def batch_of(size: int) -> dict[str, Any]:
            return make_batch(processor, size, prompt, device)

    b1 = batch_of(1)
    res.data["meta"]["tokens_batch1"] = int(b1["eagle_input_ids"].shape[1])
    first = [v for v in variants if not v.startswith("inductor")]
    graph_prof = out_dir if params.get("profile_graphed", False) else None
    bench_inference(model, b1, device, warmup, iters, first, compile_mode, res, graph_prof)
    if params.get("profile", device.type == "cuda"):
        try:
            profile_inference(model, b1, device, out_dir, res)
        except Exception as e:
            log.exception("profiling failed")
            res.data["errors"]["profile"] = f"{type(e).__name__}: {e}"
    torch._dynamo.reset()

    if params.get("train", True):
        bt = batch_of(int(cfg.bench.batch_size))
        train_iters = int(params.get("train_iters", 10))
        modes = list(params.get("train_modes", ["eager", "full"] if device.type == "cuda" else ["eager"]))
        profiled = list(params.get("profile_train_modes", ["eager"]))
        for mode in modes:
            torch._dynamo.reset()
            prof = out_dir if (mode in profiled and params.get("profile", device.type == "cuda")) else None
            bench_training(model, cfg, bt, device, train_iters, mode, res, prof)
        del bt
    last = [v for v in variants if v.startswith("inductor")]
    if last:
        del model
        torch._dynamo.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        model = build_bf16()  # fresh: training changed dtypes and compiled blocks in place
        bench_inference(model, b1, device, warmup, iters, last, compile_mode, res)
    res.save()
    table = format_table(res.data)
    print(table, flush=True)
    log.info("results written to %s", res.path)
    return 0 if not res.data["errors"] else 1


def _n16_tokenizer() -> transformers.PreTrainedTokenizerBase:
    return transformers.Qwen2TokenizerFast.from_pretrained(str(ASSETS_DIR), local_files_only=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m gr00t_exp.bench.model [hydra overrides]` (bench=model is implied)."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    out = Path("outputs") / "bench_model" / time.strftime("%Y-%m-%d_%H-%M-%S")
    for o in overrides:
        if o.startswith("paths.output_dir="):
            out = Path(o.split("=", 1)[1])
    overrides = [o for o in overrides if not o.startswith("paths.output_dir=")]
    cfg = compose_config(["mode=bench", "bench=model", *overrides], output_dir=out)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    return run(cfg)


if __name__ == "__main__":
    raise SystemExit(main())
