"""The per-embodiment projector layers: the one-embodiment slice path equals the per-sample gather
(values and gradients), and a batch is marked uniform only when it is, on the host."""

from __future__ import annotations

import torch

from gr00t_exp.model.embodiment_mlp import (
    UNIFORM_EMBODIMENT_KEY,
    CategorySpecificMLP,
    MultiEmbodimentActionEncoder,
    batch_embodiment,
    mark_uniform_embodiment,
)


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters()}


def test_slice_path_equals_the_gather_in_values_and_gradients():
    torch.manual_seed(0)
    mlp = CategorySpecificMLP(5, 12, 24, 7)
    for p in mlp.parameters():  # non-zero biases: the bias slice is checked too
        torch.nn.init.normal_(p)
    x = torch.randn(6, 3, 12)
    ids = torch.full((6,), 3)
    outs, grads = [], []
    for cat in (ids, 3):
        mlp.zero_grad()
        y = mlp(x, cat)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        outs.append(y.detach())
        grads.append(_grads(mlp))
    # fp32, values of order 10: the GEMMs sum in different orders
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-5)
        # only embodiment 3's slice receives a gradient, on both paths
        other = torch.cat([grads[1][name][:3], grads[1][name][4:]])
        assert torch.count_nonzero(other) == 0, name


def test_action_encoder_accepts_one_id():
    torch.manual_seed(1)
    enc = MultiEmbodimentActionEncoder(action_dim=4, hidden_size=8, num_embodiments=3)
    a, t = torch.randn(2, 5, 4), torch.tensor([100, 700])
    torch.testing.assert_close(enc(a, t, 2), enc(a, t, torch.tensor([2, 2])), rtol=1e-6, atol=1e-6)


def test_marked_only_when_every_sample_shares_the_id_on_the_cpu():
    assert mark_uniform_embodiment({"embodiment_id": torch.tensor([4, 4, 4])})[UNIFORM_EMBODIMENT_KEY] == 4
    assert UNIFORM_EMBODIMENT_KEY not in mark_uniform_embodiment({"embodiment_id": torch.tensor([4, 1, 4])})
    assert UNIFORM_EMBODIMENT_KEY not in mark_uniform_embodiment({"state": torch.zeros(2)})
    mixed = {"embodiment_id": torch.tensor([0, 2])}
    assert batch_embodiment(mixed) is mixed["embodiment_id"]
    assert batch_embodiment(mark_uniform_embodiment({"embodiment_id": torch.tensor([2, 2])})) == 2
    if torch.cuda.is_available():  # device ids are never read back (that would synchronise)
        assert UNIFORM_EMBODIMENT_KEY not in mark_uniform_embodiment({"embodiment_id": torch.ones(2).cuda()})
