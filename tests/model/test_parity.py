"""Parity with the reference GR00T N1.5 on the tiny fixture (fp32, CPU, eval mode), within 1e-5.

The reference outputs were produced by the upstream implementation (see refdata tiny/README.md);
noise, flow time and the initial actions are the injected tensors stored with them.
"""

from __future__ import annotations

import pytest
import torch

from ._model_refdata import TINY, load, max_diff, needs_refdata

pytestmark = needs_refdata
TOL = 1e-5


@pytest.fixture(scope="module")
def model():
    from gr00t_exp.model import load_pretrained

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_pretrained(TINY, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def primary():
    return load("inputs"), load("outputs")


def _check_loss_and_actions(model, inputs, ref, noise, t, init_noise):
    with torch.no_grad():
        out = model(inputs, noise=noise, t=t)
        act = model.get_action(inputs, init_noise=init_noise)
    assert max_diff(out["backbone_features"], ref["backbone_features"]) < TOL
    assert max_diff(out["vl_embs"], ref["vl_embs"]) < TOL
    assert max_diff(out["pred_velocity"], ref["train_pred_velocity"]) < TOL
    assert abs(out["loss"].item() - ref["loss"].item()) < TOL
    assert max_diff(act["vl_embs"], ref["vl_embs"]) < TOL
    assert max_diff(act["action_pred"], ref["action_pred"]) < TOL
    return out, act


def test_nopad_every_tensor(model):
    inputs, ref = load("inputs_nopad"), load("outputs_nopad")
    em = model.backbone.eagle_model
    with torch.no_grad():
        vision = em.vision_model(inputs["eagle_pixel_values"])
        bb = model.backbone(inputs, return_intermediates=True)
    assert max_diff(vision, ref["vision_last_hidden_state"]) < TOL
    assert max_diff(bb["vit_embeds"], ref["vit_embeds"]) < TOL
    assert max_diff(bb["llm_inputs_embeds"], ref["llm_inputs_embeds"]) < TOL
    assert torch.equal(bb["backbone_attention_mask"], ref["backbone_attention_mask"])
    with torch.no_grad():
        state_features = model.action_head.state_encoder(inputs["state"], inputs["embodiment_id"])
    assert max_diff(state_features, ref["train_state_features"]) < TOL

    out, act = _check_loss_and_actions(
        model, inputs, ref, ref["train_noise"], ref["train_t"], ref["infer_init_noise"]
    )
    assert torch.equal(out["timesteps"], ref["train_t_discretized"])
    for k in range(4):
        assert max_diff(act["velocities"][k], ref[f"infer_velocity_step{k}"]) < TOL


def test_time_from_beta_sample_matches_reference(model):
    ref = load("outputs_nopad")
    s = model.action_head.config.noise_s
    t = (s - ref["train_beta_sample"]) / s
    assert max_diff(t, ref["train_t"]) < 1e-7
    assert torch.equal((t * 1000).long(), ref["train_t_discretized"])


def test_padded_batch_zero_rows(model, primary):
    """Default behaviour: padded LLM query rows give zeros (flash-attention, released checkpoints)."""
    inputs, eager_ref = primary
    ref = load("outputs_padzero")
    model.zero_padded_rows = True
    _check_loss_and_actions(
        model, inputs, ref, eager_ref["train_noise"], eager_ref["train_t"], eager_ref["infer_init_noise"]
    )


def test_padded_batch_eager_rows(model, primary):
    """zero_padded_rows=False: the eager reference (uniform attention on fully masked rows)."""
    inputs, ref = primary
    model.zero_padded_rows = False
    try:
        out, act = _check_loss_and_actions(
            model, inputs, ref, ref["train_noise"], ref["train_t"], ref["infer_init_noise"]
        )
        for k in range(4):
            assert max_diff(act["velocities"][k], ref[f"infer_velocity_step{k}"]) < TOL
    finally:
        model.zero_padded_rows = True


def test_padding_modes_differ_only_on_the_padded_sample(model, primary):
    inputs, _ = primary
    feats = {}
    for zero in (True, False):
        model.zero_padded_rows = zero
        with torch.no_grad():
            feats[zero] = model.backbone(inputs)["backbone_features"]
    model.zero_padded_rows = True
    real = inputs["eagle_attention_mask"].bool()
    assert torch.allclose(feats[True][real], feats[False][real], atol=TOL)  # real tokens never see padding
    assert max_diff(feats[True][~real], feats[False][~real]) > 1e-3


def test_a_batch_marked_uniform_matches_the_reference(model, primary):
    """Training marks one-embodiment batches (train/module.py): the slice path gives the same loss."""
    from gr00t_exp.model.embodiment_mlp import UNIFORM_EMBODIMENT_KEY, mark_uniform_embodiment

    inputs, ref = load("inputs_nopad"), load("outputs_nopad")
    marked = mark_uniform_embodiment(dict(inputs))
    assert UNIFORM_EMBODIMENT_KEY in marked
    with torch.no_grad():
        out = model(marked, noise=ref["train_noise"], t=ref["train_t"])
    assert max_diff(out["pred_velocity"], ref["train_pred_velocity"]) < TOL
    assert abs(out["loss"].item() - ref["loss"].item()) < TOL
