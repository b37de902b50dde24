"""bench=dataloader: samples/s at a batch size, per-stage split, per backend, cached vs uncached.

    python run.py mode=bench bench=dataloader data=pick_place embodiment=gr1_arms_only \
        bench.params.backends=[torchcodec,pyav] bench.params.workers=[0,2]

Params (bench.params): backends (default [torchcodec, pyav]), cached ([true, false]), workers
([0, 2]), cached_batches (bench.iters), uncached_batches (3), build (true: time a cold cache
build per backend into a temporary dir, one decode thread), augment ([cpu]; gpu = the loader
of data.augment_on=gpu: raw frames + augmentation draws, the augmentation itself left to the
training device). Stages are timed in-process (0 workers): decode = the batch's frame fetch
(one decoder call per episode and view) + parquet rows, transform = video augmentation (gpu: only
its draws) + normalisation + packing, collate = stacking + processor (gpu: tokens only). With augment=gpu and CUDA present, the device side
(BatchAugment on a host-to-device-copied batch) is timed too. End-to-end rows run the DataLoader.
Writes `bench_dataloader.json` into paths.output_dir.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from gr00t_exp.data.collate import Gr00tCollator
from gr00t_exp.data.datamodule import Gr00tDataModule, worker_init_fn
from gr00t_exp.data.dataset import Gr00tDataset
from gr00t_exp.data.factory import make_dataset
from gr00t_exp.data.transforms.video_batch import BatchAugment
from gr00t_exp.data.video import FrameCache
from gr00t_exp.data.video.backends import torchcodec_status


def _param(cfg: DictConfig, key: str, default: Any) -> Any:
    p = cfg.bench.params or {}
    v = p.get(key, default) if hasattr(p, "get") else default
    return OmegaConf.to_container(v) if OmegaConf.is_config(v) else v


def _stage_split(ds: Gr00tDataset, collate: Gr00tCollator, bs: int, batches: int, rng) -> dict:
    t_dec = t_tf = t_col = 0.0
    n = 0
    ds.__getitems__(list(range(0, len(ds), max(1, len(ds) // 64))))  # open files, frame maps: not timed
    for _ in range(batches):
        idx = rng.integers(0, len(ds), bs)
        t0 = time.perf_counter()
        raws = ds.raw_samples([ds.locate(int(i)) for i in idx])
        t1 = time.perf_counter()
        samples = ds.transform_samples(raws)
        t2 = time.perf_counter()
        collate(samples)
        t3 = time.perf_counter()
        t_dec, t_tf, t_col, n = t_dec + t1 - t0, t_tf + t2 - t1, t_col + t3 - t2, n + len(idx)
    ms = lambda t: 1000 * t / n  # noqa: E731
    return {"decode_ms": ms(t_dec), "transform_ms": ms(t_tf), "collate_ms": ms(t_col),
            "in_process_samples_s": n / (t_dec + t_tf + t_col)}  # fmt: skip


def _device_augment_ms(ds: Gr00tDataset, collate: Gr00tCollator, bs: int, batches: int) -> float | None:
    """Per batch: BatchAugment of a deferred batch already on the GPU (None without CUDA)."""
    if not torch.cuda.is_available():
        return None
    augment, times = BatchAugment(), []
    rng = np.random.default_rng(1)
    for i in range(batches + 1):
        batch = collate(ds.samples_at([ds.locate(int(j)) for j in rng.integers(0, len(ds), bs)]))
        batch = {k: v.cuda(non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        batch["augment"] = {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch["augment"].items()}
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        augment(batch)
        torch.cuda.synchronize()
        if i:  # the first call (kernel selection, allocator warm-up) is not timed
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def _loader_rate(ds, collate, bs: int, workers: int, batches: int, seed: int) -> float:
    kw: dict[str, Any] = dict(batch_size=bs, shuffle=True, num_workers=workers, collate_fn=collate,
                              worker_init_fn=worker_init_fn, generator=torch.Generator().manual_seed(seed))  # fmt: skip
    if workers:
        kw.update(persistent_workers=False, prefetch_factor=4)
    it = iter(DataLoader(ds, **kw))
    next(it)  # start-up (worker fork, first files) excluded
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            n += len(next(it)["action"])
        except StopIteration:
            break
    return n / (time.perf_counter() - t0)


def run(cfg: DictConfig) -> int:
    torch.set_num_threads(1)
    backends = list(_param(cfg, "backends", ["torchcodec", "pyav"]))
    if "torchcodec" in backends and not torchcodec_status()[0]:
        print(f"skipping torchcodec: {torchcodec_status()[1]}")
        backends.remove("torchcodec")
    cached_modes = [bool(c) for c in _param(cfg, "cached", [True, False])]
    workers_list = [int(w) for w in _param(cfg, "workers", [0, 2])]
    bs = int(cfg.bench.batch_size)
    cached_batches = int(_param(cfg, "cached_batches", cfg.bench.iters))
    uncached_batches = int(_param(cfg, "uncached_batches", 3))
    augments = [str(a) for a in _param(cfg, "augment", ["cpu"])]
    if set(augments) - {"cpu", "gpu"}:
        raise ValueError(f"bench.params.augment={augments}: use cpu and/or gpu")
    dm = Gr00tDataModule.from_config(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        dm.cfg = OmegaConf.merge(dm.cfg, {"cache": {"build_on_setup": False, "enabled": False}})
        dm.setup("fit")
        meta, stats = dm.metas[0], dm.stats[0]
        collate = Gr00tCollator(dm.processor)
        eps = [e.index for e in meta.episodes]
        results: dict[str, Any] = {
            "dataset": str(meta.root),
            "batch_size": bs,
            "cpus": os.cpu_count(),
            "rows": [],
        }
        print(f"dataset {meta.root} ({len(eps)} episodes, {meta.total_frames} frames), batch {bs}, "
              f"{os.cpu_count()} CPUs (shared machine: figures vary run to run)")  # fmt: skip
        c = cfg.data.cache
        for backend in backends:
            cache = None
            for cached in cached_modes:
                if cached:
                    cache = FrameCache(Path(tmp) / backend, c.height, c.width, backend=backend, threads=1)
                    if bool(_param(cfg, "build", True)):
                        t0 = time.perf_counter()
                        frames = 0
                        for ep in eps:
                            for key in dm.train_set.video_keys:
                                d = cache.build(meta.video_path(ep, meta.modality.video[key].original_key))
                                frames += int(np.load(d / "pts.npy").shape[0])
                        dt = time.perf_counter() - t0
                        results["rows"].append({"backend": backend, "cache_build_frames_s": frames / dt,
                                                "frames": frames})  # fmt: skip
                        print(
                            f"[{backend}] cache build: {frames} frames in {dt:.2f}s = {frames / dt:.0f} frames/s (1 thread)"
                        )
                # every data.* dataset field as configured; only the backend is the benchmark's
                ds = make_dataset(cfg.data, meta, cfg.embodiment, stats, episodes=eps, training=True,
                                  frame_cache=cache if cached else None, video_backend=backend)  # fmt: skip
                nb = cached_batches if cached else uncached_batches
                for augment in augments:
                    ds.defer_video_augment = augment == "gpu"
                    split = _stage_split(ds, collate, bs, max(2, nb // 5), np.random.default_rng(0))
                    row = {"backend": backend, "cached": cached, "augment": augment, **split}
                    if augment == "gpu":
                        row["device_augment_ms_per_batch"] = _device_augment_ms(
                            ds, collate, bs, max(2, nb // 5)
                        )
                    for w in workers_list:
                        row[f"samples_s_{w}w"] = _loader_rate(ds, collate, bs, w, nb, int(cfg.seed))
                    results["rows"].append(row)
                    rates = ", ".join(f"{w} workers {row[f'samples_s_{w}w']:.0f}" for w in workers_list)
                    row["loadavg_1m"] = os.getloadavg()[0]
                    dev = row.get("device_augment_ms_per_batch")
                    dev_s = f" | device augment {dev:.2f} ms/batch" if dev is not None else ""
                    print(f"[{backend}] {'cached  ' if cached else 'uncached'} augment={augment}: samples/s: {rates} "
                          f"| per sample decode {split['decode_ms']:.2f} ms, transform {split['transform_ms']:.2f} ms, "
                          f"collate {split['collate_ms']:.2f} ms{dev_s} | load avg {row['loadavg_1m']:.1f}")  # fmt: skip
    out = Path(str(cfg.paths.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_dataloader.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / 'bench_dataloader.json'}")
    return 0
