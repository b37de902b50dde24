"""Per-embodiment (category-specific) layers of the N1.5 action head.

Each layer holds one weight set per embodiment id: `W` (E, in, out), `b` (E, out). A batch gathers
its samples' weight sets by id and runs one batched matmul, so mixed-embodiment batches need no
Python loop and shapes stay static (torch.compile / CUDA graphs friendly).

A batch whose samples all share one embodiment (every single-embodiment fine-tune) may say so on
the host: `mark_uniform_embodiment(batch)` adds `embodiment_id_uniform` (a Python int) while the
ids are still on the CPU, and the layers then use that one weight slice in a plain GEMM. The
gather copies the slice once per sample (B x 10 M weights per step for N1.5, and the same again
in its backward's scatter-add); the slice path reads it once. Same values up to the GEMMs'
summation order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UNIFORM_EMBODIMENT_KEY = "embodiment_id_uniform"


def mark_uniform_embodiment(batch: dict[str, Any]) -> dict[str, Any]:
    """Add `embodiment_id_uniform` = the id when every sample of `batch` has the same one. Only for
    ids still on the CPU (reading device ids would synchronise); other batches are left as they are."""
    ids = batch.get("embodiment_id")
    if torch.is_tensor(ids) and ids.device.type == "cpu" and ids.numel() > 0:
        first = int(ids.reshape(-1)[0])
        if bool((ids == first).all()):
            batch[UNIFORM_EMBODIMENT_KEY] = first
    return batch


def batch_embodiment(batch: Mapping[str, Any]) -> Tensor | int:
    """What the category-specific layers take: the uniform id (an int) when the batch carries one,
    else the per-sample `embodiment_id` tensor."""
    uniform = batch.get(UNIFORM_EMBODIMENT_KEY)
    return int(uniform) if uniform is not None else batch["embodiment_id"]


class CategorySpecificLinear(nn.Module):
    def __init__(self, num_categories: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.empty(num_categories, in_dim, out_dim))
        self.b = nn.Parameter(torch.empty(num_categories, out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Fan-in scaled (upstream uses a flat 0.02, which suits the 3B's 1024+ wide layers but
        # starves narrow random-init models of signal). Pretrained checkpoints overwrite this.
        nn.init.normal_(self.W, std=self.W.shape[1] ** -0.5)
        nn.init.zeros_(self.b)

    def forward(self, x: Tensor, cat_ids: Tensor | int) -> Tensor:
        """x (B, T, in), cat_ids (B,) or one id for the whole batch -> (B, T, out)."""
        if isinstance(cat_ids, int):
            return F.linear(x, self.W[cat_ids].t(), self.b[cat_ids])
        return torch.baddbmm(self.b[cat_ids].unsqueeze(1), x, self.W[cat_ids])


class CategorySpecificMLP(nn.Module):
    """layer1 -> ReLU -> layer2, both per embodiment."""

    def __init__(self, num_categories: int, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layer1 = CategorySpecificLinear(num_categories, in_dim, hidden_dim)
        self.layer2 = CategorySpecificLinear(num_categories, hidden_dim, out_dim)

    def forward(self, x: Tensor, cat_ids: Tensor | int) -> Tensor:
        return self.layer2(F.relu(self.layer1(x, cat_ids)), cat_ids)


def action_time_sinusoid(timesteps: Tensor, dim: int, exact_frequencies: bool = False) -> Tensor:
    """(B, T) integer buckets -> (B, T, dim) = [sin | cos], frequencies exp(-i ln(10000) / (dim/2)).

    Same float32 op order as the reference (buckets up to 999 amplify frequency rounding).
    `exact_frequencies` (N1.6): exp rounded correctly (float64), independent of the CPU's SIMD exp.
    """
    half = dim // 2
    # torch.full, not torch.tensor: no host-to-device copy (allowed inside a CUDA-graph capture).
    step = torch.log(torch.full((), 10000.0, dtype=torch.float32, device=timesteps.device)) / half
    exponent = -torch.arange(half, dtype=torch.float32, device=timesteps.device) * step
    rates = exponent.double().exp().float() if exact_frequencies else exponent.exp()
    freqs = timesteps.float().unsqueeze(-1) * rates
    return torch.cat([torch.sin(freqs), torch.cos(freqs)], dim=-1)


class MultiEmbodimentActionEncoder(nn.Module):
    """Noisy action chunk + timestep bucket -> action tokens.

    a = W1(actions); x = swish(W2([a | sinusoid(t)])); out = W3(x), all per embodiment.
    """

    # True (set by N1.6's action head): correctly rounded sinusoid frequencies.
    exact_frequencies: bool = False

    def __init__(self, action_dim: int, hidden_size: int, num_embodiments: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.W1 = CategorySpecificLinear(num_embodiments, action_dim, hidden_size)
        self.W2 = CategorySpecificLinear(num_embodiments, 2 * hidden_size, hidden_size)
        self.W3 = CategorySpecificLinear(num_embodiments, hidden_size, hidden_size)

    def time_features(self, timesteps: Tensor, horizon: int, dtype: torch.dtype) -> Tensor:
        """(B,) buckets -> (B, horizon, hidden) sinusoid; constant per denoising step."""
        t = timesteps[:, None].expand(-1, horizon)
        return action_time_sinusoid(t, self.hidden_size, self.exact_frequencies).to(dtype)

    def forward(
        self, actions: Tensor, timesteps: Tensor, cat_ids: Tensor | int, time_features: Tensor | None = None
    ) -> Tensor:
        a = self.W1(actions, cat_ids)
        tau = (
            time_features
            if time_features is not None
            else self.time_features(timesteps, actions.shape[1], a.dtype)
        )
        x = F.silu(self.W2(torch.cat([a, tau], dim=-1), cat_ids))
        return self.W3(x, cat_ids)
