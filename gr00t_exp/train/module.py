"""The LightningModule: flow-matching training of a Gr00tN15 and open-loop validation.

Determinism (what makes "N steps == N/2 + resume + N/2" hold): before every training step the
global RNGs are re-seeded from (seed, global step, rank), so the flow-matching noise and time, and
dropout, depend only on where training is, never on what ran before (a resume, a validation).
The data order is the ResumableSampler's, a function of (seed, position) as well.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import FSDPStrategy
from torch import nn

from gr00t_exp.data.transforms.video_batch import BatchAugment
from gr00t_exp.model.embodiment_mlp import mark_uniform_embodiment
from gr00t_exp.model.tuning import set_frozen_modules_to_eval
from gr00t_exp.train.config import OptimConfig
from gr00t_exp.train.optim import build_optimizer, build_scheduler, use_fused

# Lightning notes that this module's `on_after_batch_transfer` runs although a DataModule is passed:
# that is the design (the DataModule defines no such hook), so the note is only noise in every run.
warnings.filterwarnings(
    "ignore", message=r"You have overridden `on_after_batch_transfer` in `LightningModule`"
)


def step_seed(seed: int, step: int, rank: int = 0, stream: int = 0) -> int:
    """A well-mixed 63-bit seed for (seed, step, rank, stream)."""
    return int(
        np.random.SeedSequence([int(seed), int(step), int(rank), int(stream)]).generate_state(2, np.uint64)[0]
        >> np.uint64(1)
    )


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # CPU and every CUDA device


def rng_states() -> dict[str, Any]:
    # Plain types and tensors only, so the checkpoint loads with torch.load(weights_only=True).
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [
            kind,
            torch.from_numpy(np.asarray(keys).astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(gauss),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.asarray(keys).astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def _masked_sq_err(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of squared errors over valid entries and the count of valid entries."""
    err = (pred.float() - target.float()) ** 2
    if mask is None:
        return err.sum(), torch.tensor(float(err.numel()), device=err.device)
    m = mask.to(err.dtype)
    return (err * m).sum(), m.sum()


class Gr00tLitModule(pl.LightningModule):
    """Wraps a Gr00tN15 (`forward(batch) -> {"loss"}`, `get_action(batch) -> {"action_pred"}`).

    :param model: the built (and tuned: frozen parts / LoRA applied) model.
    :param optim: optimiser + schedule config.
    :param total_steps: optimiser steps of the whole run (the schedule's length).
    :param seed: the run's seed (per-step seeds derive from it).
    :param trainable_only_ckpt: store only trainable weights (+ buffers) in Lightning checkpoints.
    """

    def __init__(
        self,
        model: nn.Module,
        optim: OptimConfig,
        total_steps: int,
        seed: int = 42,
        trainable_only_ckpt: bool = False,
        compile: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        # torch.compile options of the training forward (None = eager); compiled lazily on the
        # first step so the graph is built on the training device.
        self.compile_options = dict(compile) if compile is not None else None
        self._graphed_steps = (self.compile_options or {}).get("mode") in ("reduce-overhead", "max-autotune")
        self._train_forward: Any = None
        self.optim_cfg = optim
        self.total_steps = int(total_steps)
        self.seed = int(seed)
        self.trainable_only_ckpt = trainable_only_ckpt
        # Frozen weights are not in a trainable-only checkpoint: load the rest non-strictly.
        self.strict_loading = not trainable_only_ckpt
        self._val_sums: dict[str, torch.Tensor] = {}
        # Training batches of data.augment_on=gpu carry raw frames + augmentation draws; this turns
        # them into eagle_pixel_values on the device (no parameters: nothing in checkpoints).
        self.batch_augment = BatchAugment()

    # -- training --------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor], **kw) -> dict[str, torch.Tensor]:
        return self.model(batch, **kw)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # While the ids are on the CPU: a one-embodiment batch runs its projectors on one weight
        # slice instead of a per-sample gather (model/embodiment_mlp.py).
        return mark_uniform_embodiment(batch) if isinstance(batch, dict) else batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Deferred video augmentation, batched where the batch now lives (a no-op for batches the
        # CPU already processed, e.g. validation's).
        return self.batch_augment(batch)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        seed_all(step_seed(self.seed, self.global_step, self.global_rank))
        if self._graphed_steps:
            # model.compile_mode=reduce-overhead: a new step of the CUDA-graph replays (the last
            # step's graph outputs are dead, their memory is reused).
            torch.compiler.cudagraph_mark_step_begin()
        if self.compile_options is not None:
            # The compiled `forward` bypasses the model's pre-hook that keeps frozen parts in eval
            # mode (no dropout in a frozen backbone), so do it here (a few flag writes).
            set_frozen_modules_to_eval(self.model)

    def training_forward(self) -> Any:
        """`model.forward`, compiled when `compile_options` is set (built once, on first use)."""
        if self.compile_options is None:
            return self.model
        if self._train_forward is None:
            self._train_forward = torch.compile(self.model.forward, **self.compile_options)
        return self._train_forward

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.training_forward()(batch)
        loss = out["loss"]
        bs = int(batch["action"].shape[0])
        # Under CUDA-graph replays the loss lives in the graph's memory, overwritten by the next
        # step: the logger keeps a copy.
        logged = loss.detach().clone() if self._graphed_steps else loss
        self.log("train/loss", logged, on_step=True, on_epoch=False, prog_bar=True, batch_size=bs)
        return loss

    # -- validation ------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_sums = {}
        self._rng_before_val = rng_states()

    def _add(self, name: str, value: torch.Tensor, count: torch.Tensor) -> None:
        s = self._val_sums.setdefault(name, torch.zeros(2, dtype=torch.float64, device=self.device))
        s += torch.stack([value.detach().double(), count.detach().double()])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # Fixed noise per validation batch: validations at different steps are comparable.
        seed_all(step_seed(self.seed, batch_idx, self.global_rank, stream=1))
        action = batch["action"]
        mask = batch.get("action_mask")
        out = self.model(batch)
        self._add(
            "val/loss",
            out["loss"].detach() * action.shape[0],
            torch.tensor(float(action.shape[0]), device=self.device),
        )
        pred = self.model.get_action(batch)["action_pred"]
        sse, n = _masked_sq_err(pred[..., : action.shape[-1]], action, mask)
        self._add("val/open_loop_mse", sse, n)
        abs_err = (pred[..., : action.shape[-1]].float() - action.float()).abs()
        m = mask.to(abs_err.dtype) if mask is not None else torch.ones_like(abs_err)
        self._add("val/open_loop_mae", (abs_err * m).sum(), m.sum())

    def on_validation_epoch_end(self) -> None:
        multi = self.trainer.world_size > 1
        for name, s in self._val_sums.items():
            s = self.trainer.strategy.reduce(s, reduce_op="sum") if multi else s
            # Already summed over ranks (identical everywhere); sync_dist only silences Lightning.
            value = (s[0] / s[1].clamp_min(1)).float()
            self.log(name, value, prog_bar=name == "val/open_loop_mse", sync_dist=multi)
        # Validation must not change the training RNG stream (it is re-seeded per step anyway).
        set_rng_states(self._rng_before_val)

    # -- optimiser -------------------------------------------------------------------------
    def configure_optimizers(self) -> dict:
        trainer = self._trainer
        precision = str(trainer.precision) if trainer is not None else "32-true"
        # Under FSDP the root module clips the sharded gradients: keep the foreach optimiser there.
        fused = use_fused(self.model, self.optim_cfg, precision) and not self._under_fsdp()
        optimizer = build_optimizer(self.model, self.optim_cfg, fused=fused)
        scheduler = build_scheduler(optimizer, self.optim_cfg, self.total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def _under_fsdp(self) -> bool:
        return self._trainer is not None and isinstance(self._trainer.strategy, FSDPStrategy)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: Any = None,
        gradient_clip_algorithm: Any = None,
    ) -> None:
        by_norm = bool(gradient_clip_val) and gradient_clip_algorithm in (None, "norm")
        # FSDP: Lightning's FSDP precision plugin cannot clip by norm; the root FSDP module can
        # (it reduces the norm over the shards of every rank).
        if by_norm and self._under_fsdp():
            self._trainer.strategy.model.clip_grad_norm_(float(gradient_clip_val))
            return
        # Lightning's AMP plugin refuses to clip for fused optimisers (they may unscale inside the
        # step). Without a gradient scaler (bf16 / fp32, the only cases `use_fused` allows) the
        # gradients are already true gradients: clip them directly.
        if by_norm and any(g.get("fused") for g in optimizer.param_groups):
            params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, float(gradient_clip_val), foreach=True)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # -- checkpoints -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()
        checkpoint["gr00t_exp"] = {"seed": self.seed, "total_steps": self.total_steps}
        if self.trainable_only_ckpt:
            keep = {f"model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}
            keep |= {f"model.{n}" for n, _ in self.model.named_buffers()}
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
            checkpoint["gr00t_exp"]["trainable_only"] = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
