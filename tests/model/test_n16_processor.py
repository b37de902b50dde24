"""GR00T N1.6 processor against the reference: the processor examples (token ids, attention masks,
resized images) and the tiny fixture's raw observations -> every model input tensor."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from ._n16_refdata import load, load_json, n16

VOCAB_SHA256 = "87a257b04b17642a0688c98cd1df89c398bda4fee532d6f88b38a659ecb4ac8d"
MERGES_SHA256 = "85407d96ccd088398c5df07b7c764ed04dcc084b0e746f70016c16968be5e490"
# Fixture batches: (embodiment, raw instruction) per sample (refdata gr00t_n16/README.md).
FIXTURE_SAMPLES = {
    "": [("new_embodiment", "Pick up the RED cube, and place it in the bowl!"), ("gr1", "open the drawer.")],
    "_nopad": [("gr1", "pick up the red cube"), ("gr1", "pick up the blue cube")],
}


@pytest.fixture(scope="module")
def proc():
    from gr00t_exp.model.n16.processor import Gr00tN16Processor

    return Gr00tN16Processor.from_pretrained(n16("processor_config.json").parent)


@pytest.fixture(scope="module")
def examples():
    return {e["name"]: e for e in load_json("processor", "examples.json")["examples"]}, load(
        "processor/examples"
    )


def _rle(values):
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def test_tokenizer_is_the_shipped_n15_vocabulary():
    from gr00t_exp.model.processor import ASSETS_DIR

    # The N1.6 vocab.json has a final newline the shipped copy lacks; otherwise byte-identical.
    vocab = (ASSETS_DIR / "vocab.json").read_bytes() + b"\n"
    assert hashlib.sha256(vocab).hexdigest() == VOCAB_SHA256
    assert hashlib.sha256((ASSETS_DIR / "merges.txt").read_bytes()).hexdigest() == MERGES_SHA256


@pytest.mark.parametrize("name", ["ex1_two_views", "ex2_one_view", "ex5_formalize"])
def test_single_observation_examples(proc, examples, name):
    from gr00t_exp.model.n16.processor import chat_text, eagle_resize

    meta, images = examples
    e = meta[name]
    views = list(e["views"])
    raw = {v: images[f"{name}.raw_image_{j}"].numpy() for j, v in enumerate(views)}
    sample = proc.sample(e["embodiment"], raw, e["text_raw"])
    assert chat_text(sample.text, len(views)) == e["chat_text"]
    for j in range(len(views)):
        if f"{name}.augmented_image_{j}" in images:
            assert np.array_equal(sample.images[j], images[f"{name}.augmented_image_{j}"].numpy())
            assert np.array_equal(
                eagle_resize(sample.images[j]), images[f"{name}.eagle_resized_image_{j}"].numpy()
            )
    batch = proc.collate([sample])
    assert _rle(batch["eagle_input_ids"][0].tolist()) == e["input_ids_rle"]
    assert _rle(batch["eagle_attention_mask"][0].tolist()) == e["attention_mask_rle"]
    assert [list(p.shape) for p in batch["eagle_pixel_values"]] == e["pixel_values_shapes"]
    assert batch["image_sizes"].tolist() == e["image_sizes"]
    for j, pv in enumerate(batch["eagle_pixel_values"]):
        if f"{name}.eagle_resized_image_{j}" in images:
            u8 = images[f"{name}.eagle_resized_image_{j}"].permute(2, 0, 1)[None].float()
            assert torch.equal(pv, (u8 - 127.5) / 127.5)


def test_batch_example_left_pads(proc, examples):
    meta, images = examples
    samples = []
    for name in ("ex1_two_views", "ex2_one_view"):
        e = meta[name]
        raw = {v: images[f"{name}.raw_image_{j}"].numpy() for j, v in enumerate(e["views"])}
        samples.append(proc.sample(e["embodiment"], raw, e["text_raw"]))
    batch = proc.collate(samples)
    ex3 = meta["ex3_batch_ex1_ex2"]
    assert list(batch["eagle_input_ids"].shape) == ex3["shape"]
    assert [_rle(r.tolist()) for r in batch["eagle_attention_mask"]] == ex3["attention_mask_rle"]
    assert (batch["eagle_input_ids"][1, :93] == 151643).all()
    assert _rle(batch["eagle_input_ids"][1, 93:].tolist()) == meta["ex2_one_view"]["input_ids_rle"]


def test_eagle_native_resize(examples):
    from gr00t_exp.model.n16.processor import eagle_resize, smart_resize

    meta, images = examples
    e = meta["ex4_eagle_native"]
    assert list(smart_resize(*e["raw_size_hw"])) == e["resized_size_hw"]
    resized = eagle_resize(images["ex4_eagle_native.raw_image_0"].numpy())
    assert np.array_equal(resized, images["ex4_eagle_native.eagle_resized_image_0"].numpy())
    assert resized.shape[0] * resized.shape[1] // 784 == e["num_image_tokens"]


def test_formalize_language():
    from gr00t_exp.model.n16.processor import formalize_language

    text = "Hello, World!  It's 5 o'clock: pick_up the Cup (quickly)..."
    assert formalize_language(text) == "hello world  its 5 oclock pick_up the cup quickly"


@pytest.mark.parametrize("case", ["", "_nopad"], ids=["padded", "nopad"])
def test_fixture_inputs_from_raw_observations(proc, case):
    inputs = load(f"inputs{case}")
    samples = []
    for i, (tag, text) in enumerate(FIXTURE_SAMPLES[case]):

        def group(kind: str, i: int = i) -> dict[str, np.ndarray]:
            prefix = f"raw_{kind}_{i}_"
            return {k[len(prefix) :]: v.numpy() for k, v in inputs.items() if k.startswith(prefix)}

        s = proc.sample(tag, group("video"), text, group("state"), group("action"))
        for j, img in enumerate(s.images):
            assert np.array_equal(img.transpose(2, 0, 1), inputs[f"proc_image_{i}_{j}"].numpy())
        samples.append(s)
    batch = proc.collate(samples)
    assert torch.equal(batch["eagle_input_ids"], inputs["input_ids"])
    assert torch.equal(batch["eagle_attention_mask"], inputs["attention_mask"])
    assert (torch.cat(batch["eagle_pixel_values"]) - inputs["pixel_values"]).abs().max() <= 1e-6
    assert torch.equal(batch["image_sizes"], inputs["image_sizes"])
    assert torch.equal(batch["embodiment_id"], inputs["embodiment_id"])
    assert batch["state"].dtype == torch.float32 and batch["action_mask"].dtype == torch.float64
    # float64 arithmetic cast to float32: at most one float32 rounding step apart.
    assert (batch["state"] - inputs["state"]).abs().max() <= 1e-6
    assert (batch["action"] - inputs["action"]).abs().max() <= 1e-6
    assert torch.equal(batch["action_mask"], inputs["action_mask"])


def test_relative_action_round_trip(proc):
    """decode_action(action(x)) == x for in-range raw actions (relative groups use the state)."""
    inputs = load("inputs")
    state = {k[len("raw_state_1_") :]: v.numpy() for k, v in inputs.items() if k.startswith("raw_state_1_")}
    action = {
        k[len("raw_action_1_") :]: v.numpy() for k, v in inputs.items() if k.startswith("raw_action_1_")
    }
    norm = proc.state_action.action("gr1", action, state)
    decoded = proc.state_action.decode_action("gr1", norm, state)
    pos = 0
    for key in proc.modality_configs["gr1"]["action"]["modality_keys"]:
        raw, width = action[key], action[key].shape[1]
        unclipped = np.abs(norm[:, pos : pos + width]) < 1.0  # clipped values do not invert
        assert unclipped.any()
        np.testing.assert_allclose(decoded[key][unclipped], raw[unclipped], atol=1e-5)
        pos += width
    assert (
        proc.decode_action("gr1", torch.from_numpy(np.pad(norm, ((0, 34), (0, 99)))), state).keys()
        == action.keys()
    )


def test_sincos_and_clipping_rules():
    from gr00t_exp.model.n16.state_action import StateActionProcessor

    stats = {
        "r": {
            "state": {
                "a": {k: [0.0, 0.0] for k in ("mean", "q01", "q99")}
                | {"min": [0.0, 0.0], "max": [1.0, 1.0], "std": [1.0, 1.0]},
                "m": {"mean": [1.0], "std": [2.0], "min": [0.0], "max": [1.0], "q01": [0.0], "q99": [1.0]},
                "s": {"mean": [0.0], "std": [1.0], "min": [0.0], "max": [1.0], "q01": [0.0], "q99": [1.0]},
            }
        }
    }
    mods = {
        "r": {
            "state": {
                "delta_indices": [0],
                "modality_keys": ["a", "m", "s"],
                "sin_cos_embedding_keys": ["s"],
                "mean_std_embedding_keys": ["m"],
            }
        }
    }
    p = StateActionProcessor(mods, stats, {"apply_sincos_state_encoding": True, "clip_outliers": True})
    out = p.state("r", {"a": np.array([[2.0, 0.5]]), "m": np.array([[9.0]]), "s": np.array([[0.3]])})
    # min-max clipped to 1; mean/std state groups NOT clipped ((9 - 1) / 2 = 4); sin/cos of raw values.
    np.testing.assert_allclose(out[0], [1.0, 0.0, 4.0, np.sin(0.3), np.cos(0.3)], rtol=1e-6)


def test_unknown_embodiment_tag_names_the_file(proc):
    with pytest.raises(KeyError, match=r"embodiment_id\.json.*'my_robot'.*new_embodiment"):
        proc.embodiment_id("my_robot")
    assert proc.embodiment_id("unitree_g1") == 8 and proc.embodiment_id("new_embodiment") == 10


def test_missing_processor_files(tmp_path):
    from gr00t_exp.model.n16.processor import Gr00tN16Processor

    (tmp_path / "processor_config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"statistics\.json"):
        Gr00tN16Processor.from_pretrained(tmp_path)


def test_tag_table_matches_the_shared_yaml():
    from gr00t_exp.embodiment.ids import projector_table

    assert dict(projector_table("gr00t_n16")) == load_json("embodiment_id.json")
