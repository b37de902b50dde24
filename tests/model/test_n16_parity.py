"""Parity with the reference GR00T N1.6 on the tiny fixture (fp32, CPU, eval mode).

Every stored tensor of outputs.safetensors (left-padded batch) and outputs_nopad.safetensors within
1e-5 absolute (1e-4 for train_action_loss, squared errors up to 21); backbone_features / vl_embeds
only where the attention mask is set (what the LLM writes at padded rows is backend-dependent and
never reaches the actions). Noise, flow times and initial actions are the injected draws.

The DiT and action-encoder sinusoids use correctly rounded float32 frequencies: torch.exp's
float32 result can be one ulp off depending on the CPU, and at bucket 750 a one-ulp frequency
moves the step-3 velocity by up to 1.4e-5 (test_frequencies_are_correctly_rounded).
"""

from __future__ import annotations

import pytest
import torch

from ._n16_refdata import as_batch, load, max_diff, n16

TOL = 1e-5
LOSS_ELEM_TOL = 1e-4
CASES = ["", "_nopad"]


@pytest.fixture(scope="module")
def model():
    from gr00t_exp.model import load_pretrained

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_pretrained(n16("model.safetensors").parent, dtype=torch.float32).eval()


@pytest.fixture(scope="module", params=CASES, ids=["padded", "nopad"])
def case(request, model):
    inputs, ref = load(f"inputs{request.param}"), load(f"outputs{request.param}")
    batch = as_batch(inputs)
    with torch.no_grad():
        bb = model.backbone(batch, return_intermediates=True)
        train = model(batch, noise=ref["train_noise"], t=ref["train_t"])
        infer = model.get_action(batch, init_noise=ref["infer_init_noise"])
    return batch, ref, bb, train, infer


def test_loads_as_n16(model):
    from gr00t_exp.model import Gr00tN16

    assert isinstance(model, Gr00tN16)
    assert model.metadata is not None and set(model.metadata) == {
        "processor_config.json",
        "statistics.json",
        "embodiment_id.json",
    }


def test_vision_connector_and_llm_inputs(case):
    _, ref, bb, _, _ = case
    for name in ("vision_last_hidden_state", "pixel_shuffle_out", "vit_embeds", "llm_inputs_embeds"):
        assert max_diff(bb[name], ref[name]) < TOL, name


def test_backbone_features_and_masks(case):
    _, ref, bb, train, infer = case
    real = ref["backbone_attention_mask"]
    assert torch.equal(bb["backbone_attention_mask"], real)
    assert torch.equal(bb["image_mask"], ref["image_mask"])
    assert max_diff(bb["backbone_features"][real], ref["backbone_features"][real]) < TOL
    assert max_diff(train["vl_embs"][real], ref["vl_embeds"][real]) < TOL
    assert max_diff(infer["vl_embs"][real], ref["vl_embeds"][real]) < TOL


def test_training_forward(case):
    _, ref, _, train, _ = case
    assert torch.equal(train["timesteps"], ref["train_t_discretized"])
    assert max_diff(train["state_features"], ref["train_state_features"]) < TOL
    assert max_diff(train["action_features"], ref["train_action_features"]) < TOL
    assert max_diff(train["dit_output"], ref["train_dit_output"]) < TOL
    assert max_diff(train["pred_velocity"], ref["train_pred_velocity"]) < TOL
    assert max_diff(train["action_loss"], ref["train_action_loss"]) < LOSS_ELEM_TOL
    assert abs(train["loss"].item() - ref["loss"].item()) < TOL


def test_inference_every_step(case):
    _, ref, _, _, infer = case
    assert max_diff(infer["state_features"], ref["state_features"]) < TOL
    for k in range(4):
        assert max_diff(infer["dit_outputs"][k], ref[f"infer_dit_output_step{k}"]) < TOL, k
        assert max_diff(infer["velocities"][k], ref[f"infer_velocity_step{k}"]) < TOL, k
    assert max_diff(infer["action_pred"], ref["action_pred"]) < TOL


def test_flow_time_from_beta_sample(model):
    for name in CASES:
        ref = load(f"outputs{name}")
        t = model.action_head.time_from_beta(ref["train_beta_sample"])
        assert max_diff(t, ref["train_t"]) < 1e-7
        assert torch.equal((t * 1000).long(), ref["train_t_discretized"])


def test_padding_never_reaches_the_actions(model):
    inputs, ref = load("inputs"), load("outputs")
    batch = as_batch(inputs)
    with torch.no_grad():
        base = model.get_action(batch, init_noise=ref["infer_init_noise"])["action_pred"]
        head = model.action_head
        bb = model.backbone(batch)
        feats = bb["backbone_features"].clone()
        feats[~bb["backbone_attention_mask"]] = 123.0
        ctx = head.prepare(
            feats, bb["backbone_attention_mask"], bb["image_mask"], batch["state"], batch["embodiment_id"]
        )
        moved = head.sample(ctx, batch["embodiment_id"], ref["infer_init_noise"])[0]
    assert torch.equal(base, moved)


def test_pixel_values_as_list_match_stacked(model):
    inputs, ref = load("inputs_nopad"), load("outputs_nopad")
    batch = as_batch(inputs)
    listed = dict(batch, eagle_pixel_values=[p[None] for p in batch["eagle_pixel_values"]])
    with torch.no_grad():
        a = model.get_action(batch, init_noise=ref["infer_init_noise"])["action_pred"]
        b = model.get_action(listed, init_noise=ref["infer_init_noise"])["action_pred"]
    assert torch.equal(a, b)


def test_frequencies_are_correctly_rounded(model):
    """N1.6 computes exp of the sinusoid exponents in float64 and rounds once (CPU-independent);
    N1.5's encoders keep torch.exp in float32 (its own parity was measured that way)."""
    import math

    from gr00t_exp.model.dit import timestep_sinusoid

    head = model.action_head
    assert head.model.timestep_encoder.exact_frequencies and head.action_encoder.exact_frequencies
    exponent = -math.log(10000.0) * torch.arange(128, dtype=torch.float32) / 127
    exact = torch.exp(exponent.double()).float()
    t = torch.tensor([750])
    got = timestep_sinusoid(t, 256, exact_frequencies=True)
    assert torch.equal(got[:, :128], torch.cos(t[:, None].float() * exact[None]))
