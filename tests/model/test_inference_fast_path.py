"""The inference fast path of the model (fused q/k/v, cached timestep tensors, embodiment weights
gathered once) equals the plain computation, and its caches follow weight changes (fp32, CPU)."""

from __future__ import annotations

import copy

import pytest
import torch

from gr00t_exp.bench.model import make_batch
from gr00t_exp.config.compose import compose_config
from gr00t_exp.model import build_model
from gr00t_exp.model.derived import DerivedCache, caching_enabled, plain_path
from gr00t_exp.model.inference import GraphedGetAction
from gr00t_exp.model.processor import Gr00tProcessor

TOL = 1e-5


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return build_model(compose_config(["model=gr00t_n15_tiny"]).model).eval()


@pytest.fixture(scope="module")
def batch():
    b = make_batch(Gr00tProcessor.from_pretrained(), 2, "pick up the cube", torch.device("cpu"))
    b["embodiment_id"] = torch.tensor([31, 24])  # mixed embodiments: per-sample weight slices
    return b


def _noise(b: int = 2) -> torch.Tensor:
    return torch.randn(b, 16, 32, generator=torch.Generator().manual_seed(3))


def _caches(model) -> list[DerivedCache]:
    return [m for mod in model.modules() for m in vars(mod).values() if isinstance(m, DerivedCache)]


def _act(model, batch, plain: bool) -> torch.Tensor:
    if plain:
        with plain_path(), torch.inference_mode():
            return model.get_action(batch, init_noise=_noise())["action_pred"]
    with torch.inference_mode():
        return model.get_action(batch, init_noise=_noise())["action_pred"]


def test_fast_path_equals_plain_path(model, batch):
    for c in _caches(model):
        c.clear()
    ref = _act(model, batch, plain=True)
    assert sum(len(c) for c in _caches(model)) == 0  # the plain path builds nothing
    fast = _act(model, batch, plain=False)
    again = _act(model, batch, plain=False)  # second call: everything from the caches
    assert sum(len(c) for c in _caches(model)) > 0
    assert (fast - ref).abs().max().item() < TOL
    assert torch.equal(fast, again)
    # the training forward under no_grad (evaluation loss) takes the fused projections too
    with torch.no_grad():
        out_fast = model(batch, noise=_noise(), t=torch.tensor([0.3, 0.8]))
        with plain_path():
            out_ref = model(batch, noise=_noise(), t=torch.tensor([0.3, 0.8]))
    assert (out_fast["pred_velocity"] - out_ref["pred_velocity"]).abs().max().item() < TOL


def test_caches_follow_in_place_weight_updates(model, batch):
    m = copy.deepcopy(model)
    assert sum(len(c) for c in _caches(m)) == 0  # a copy starts with empty caches
    before = _act(m, batch, plain=False)
    with torch.no_grad():  # what an optimiser step does: in-place writes
        m.action_head.model.timestep_encoder.timestep_embedder.linear_1.weight.mul_(1.5)
        m.action_head.model.transformer_blocks[1].attn1.to_q.weight.add_(0.05)
        m.action_head.model.transformer_blocks[0].attn1.to_v.bias.add_(0.05)
    after = _act(m, batch, plain=False)
    ref = _act(m, batch, plain=True)
    assert (after - before).abs().max().item() > 1e-3
    assert (after - ref).abs().max().item() < TOL


def test_caches_follow_new_storage_and_dtype(model, batch):
    m = copy.deepcopy(model)
    _act(m, batch, plain=False)
    blk = m.action_head.model.transformer_blocks[1].attn1
    blk.to_k.weight.data = blk.to_k.weight.data * 0.5  # new storage, same version counter
    assert (_act(m, batch, plain=False) - _act(m, batch, plain=True)).abs().max().item() < TOL
    m.to(torch.float64)  # new dtype
    b64 = {k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in batch.items()}
    with torch.inference_mode():
        fast = m.get_action(b64, init_noise=_noise().double())["action_pred"]
        with plain_path():
            ref = m.get_action(b64, init_noise=_noise().double())["action_pred"]
    assert fast.dtype == torch.float64
    assert (fast - ref).abs().max().item() < 1e-9


def test_training_never_uses_the_caches_and_gets_gradients(model, batch):
    m = copy.deepcopy(model).train()
    assert torch.is_grad_enabled() and not caching_enabled()
    out = m(batch, noise=_noise(), t=torch.tensor([0.3, 0.8]))
    out["loss"].backward()
    assert sum(len(c) for c in _caches(m)) == 0
    attn = m.action_head.model.transformer_blocks[1].attn1
    for lin in (attn.to_q, attn.to_k, attn.to_v):
        assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    emb = m.action_head.model.timestep_encoder.timestep_embedder.linear_1
    assert emb.weight.grad is not None and emb.weight.grad.abs().sum() > 0


def test_cache_is_bounded_and_rebuilds_under_grad():
    lin = torch.nn.Linear(3, 3)
    cache: DerivedCache[torch.Tensor] = DerivedCache(max_entries=2)
    calls = []

    def build() -> torch.Tensor:
        calls.append(1)
        return lin.weight * 2

    with torch.no_grad():
        for key in ("a", "b", "c", "c"):
            cache.get([lin.weight], build, key)
    assert len(cache) == 2 and len(calls) == 3
    cache.get([lin.weight], build, "c")  # grad enabled: built, not cached
    assert len(calls) == 4


def test_graphed_get_action_needs_cuda_and_a_known_mode(model):
    with pytest.raises(ValueError, match="mode must be one of"):
        GraphedGetAction(model, mode="fast")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA device"):
            GraphedGetAction(model)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_graph_replay_equals_eager_on_the_gpu(model, batch):
    m = copy.deepcopy(model).cuda()
    b = {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()}
    noise = _noise().cuda()
    with torch.inference_mode():
        ref = m.get_action(b, init_noise=noise)["action_pred"]
    fast = GraphedGetAction(m, mode="cudagraph", autocast=False)
    first = fast(b, init_noise=noise)
    again = fast(b, init_noise=noise)
    assert len(fast.signatures) == 1
    assert (first - ref).abs().max().item() < 1e-4 and torch.equal(first, again)
    other = fast({**b, "state": b["state"] + 1.0}, init_noise=noise)  # inputs are copied in
    assert (other - first).abs().max().item() > 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_preparation_inside_the_graph_equals_eager_on_the_gpu(model, batch):
    """Raw uint8 frames + crop parameters (on the host) in, the device-side crop / resize /
    normalisation captured with the model: equal to running both eagerly; new frames and new crop
    offsets reach the graph, a new crop size is a new signature."""
    from gr00t_exp.data.transforms.video_batch import BatchAugment

    m = copy.deepcopy(model).cuda()
    gen = torch.Generator().manual_seed(5)
    base = {k: v for k, v in batch.items() if k != "eagle_pixel_values"}

    def raw(top: int, crop: int) -> dict:
        video = torch.randint(0, 256, (2, 1, 1, 240, 240, 3), dtype=torch.uint8, generator=gen)
        aug = {"top": torch.tensor([top, 0]), "left": torch.tensor([1, top]), "crop_h": crop, "crop_w": crop,
               "size": 224, "mean": torch.full((3,), 127.5), "std": torch.full((3,), 127.5)}  # fmt: skip
        return {**base, "video": video, "augment": aug}

    def eager(b: dict) -> torch.Tensor:
        on = {k: v.cuda() if torch.is_tensor(v) else v for k, v in b.items()}
        on["augment"] = {k: v.cuda() if torch.is_tensor(v) else v for k, v in b["augment"].items()}
        with torch.inference_mode():
            return m.get_action(BatchAugment()(on), init_noise=_noise().cuda())["action_pred"]

    fast = GraphedGetAction(m, mode="cudagraph", autocast=False, prepare=BatchAugment(),
                            prepare_keys=("video", "augment"))  # fmt: skip
    for b in (raw(3, 228), raw(9, 228)):
        got = fast(b, init_noise=_noise().cuda())
        assert (got - eager(b)).abs().max().item() < 1e-4
    assert len(fast.signatures) == 1
    b = raw(2, 230)
    assert (fast(b, init_noise=_noise().cuda()) - eager(b)).abs().max().item() < 1e-4
    assert len(fast.signatures) == 2
