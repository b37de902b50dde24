"""The GR00T N1.6 data path in pieces: per-step relative statistics, the processor files built
from an embodiment, raw samples -> N1.6 batch (relative actions against the last state)."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import Qwen2TokenizerFast

from gr00t_exp.config.compose import compose_config
from gr00t_exp.data.dataset import Gr00tDataset
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.n16.collate import N16Collator
from gr00t_exp.data.n16.processor_files import processor_files
from gr00t_exp.data.n16.relative_stats import RelativeStatsError, check_relative_keys, compute_relative_stats
from gr00t_exp.data.stats import compute_stats
from gr00t_exp.data.synthetic import write_synthetic_dataset
from gr00t_exp.embodiment import EmbodimentLayout
from gr00t_exp.model.build import n16_architecture
from gr00t_exp.model.n16.processor import Gr00tN16Processor
from gr00t_exp.model.n16.state_action import minmax
from gr00t_exp.model.processor import ASSETS_DIR

NORMS = [
    "embodiment.state_normalization={state.left_arm: sin_cos, state.right_arm: mean_std,"
    " state.left_hand: min_max, state.right_hand: min_max}",
    "embodiment.action_normalization={action.left_arm: min_max, action.right_arm: min_max,"
    " action.left_hand: mean_std, action.right_hand: min_max}",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = compose_config(["experiment=g1_inspire_n16_tiny", *NORMS])
    root = write_synthetic_dataset(
        tmp_path_factory.mktemp("n16_data"), cfg.embodiment, episodes=2, min_length=12, max_length=14,
        height=24, width=32,
    )  # fmt: skip
    meta = load_meta(root, cfg.embodiment)
    layout = EmbodimentLayout.from_meta(cfg.embodiment, meta)
    return cfg, meta, layout


def test_relative_stats_are_per_chunk_step_against_the_last_state(setup):
    _, meta, layout = setup
    rel = compute_relative_stats(meta, layout, ["left_arm"])
    lo = np.asarray(rel["left_arm"]["min"])
    assert lo.shape == (16, 7)
    # By hand: a[min(t + k, n - 1)] - s[t] over every row of every episode.
    spec_s, spec_a = layout.spec("state", "left_arm"), layout.spec("action", "left_arm")
    diffs = []
    for ep in meta.episodes:
        d = meta.read_episode(ep.index)
        s = np.asarray(d[spec_s.column])[:, spec_s.column_slice]
        a = np.asarray(d[spec_a.column])[:, spec_a.column_slice]
        n = len(a)
        diffs += [a[min(t + k, n - 1)] - s[t] for t in range(n) for k in [5]]
    np.testing.assert_allclose(np.asarray(rel["left_arm"]["mean"])[5], np.mean(diffs, axis=0), atol=1e-9)
    np.testing.assert_allclose(lo[5], np.min(diffs, axis=0), atol=1e-12)


def test_a_relative_key_needs_a_state_key_of_its_width(setup):
    _, _, layout = setup
    with pytest.raises(RelativeStatsError, match=r"'tail' is not an action key"):
        check_relative_keys(layout, ["tail"], "ds")
    no_state = EmbodimentLayout(**{**layout.__dict__, "state": layout.state[1:]})
    with pytest.raises(
        RelativeStatsError, match=r"action\.left_arm.*there is no state\.left_arm.*relative_action_keys"
    ):
        check_relative_keys(no_state, ["left_arm"], "ds")


def test_processor_files_follow_the_embodiment_and_keep_the_base(setup):
    cfg, meta, layout = setup
    arch = n16_architecture(cfg.model)
    rel = compute_relative_stats(meta, layout, ["left_arm"])
    base = {
        "processor_config.json": {
            "processor_class": "Gr00tN1d6Processor",
            "processor_kwargs": {"modality_configs": {"gr1": {"x": 1}}, "clip_outliers": False},
        },
        "statistics.json": {"gr1": {"state": {}}},
        "embodiment_id.json": {"gr1": 20, "new_embodiment": 10},
    }
    files = processor_files(layout, compute_stats(meta), meta.modality, rel, ["left_arm"], arch, base)
    kw = files["processor_config.json"]["processor_kwargs"]
    mods = kw["modality_configs"]["new_embodiment"]
    assert mods["state"]["sin_cos_embedding_keys"] == ["left_arm"]
    assert mods["state"]["mean_std_embedding_keys"] == ["right_arm"]
    assert mods["action"]["mean_std_embedding_keys"] == ["left_hand"]
    assert [a["rep"] for a in mods["action"]["action_configs"]] == [
        "RELATIVE",
        "ABSOLUTE",
        "ABSOLUTE",
        "ABSOLUTE",
    ]
    assert kw["modality_configs"]["gr1"] == {"x": 1} and kw["clip_outliers"] is False  # the base's kept
    assert (kw["max_state_dim"], kw["max_action_dim"], kw["max_action_horizon"]) == (
        arch.max_state_dim,
        arch.max_action_dim,
        arch.action_horizon,
    )
    assert set(files["statistics.json"]) == {"gr1", "new_embodiment"}
    assert files["embodiment_id.json"] == {"gr1": 20, "new_embodiment": 10}


def test_raw_samples_become_an_n16_batch(setup):
    cfg, meta, layout = setup
    arch = n16_architecture(cfg.model)
    rel = compute_relative_stats(meta, layout, ["left_arm"])
    files = processor_files(layout, compute_stats(meta), meta.modality, rel, ["left_arm"], arch)
    tok = Qwen2TokenizerFast.from_pretrained(str(ASSETS_DIR), local_files_only=True)
    proc = Gr00tN16Processor(
        tok,
        files["processor_config.json"]["processor_kwargs"],
        files["statistics.json"],
        files["embodiment_id.json"],
    )
    ds = Gr00tDataset(meta, cfg.embodiment, transform=False)
    raws = ds.samples_at([(0, 0), (0, 3)])
    batch = N16Collator(proc, layout)(raws)
    assert batch["action"].shape == (2, arch.action_horizon, arch.max_action_dim)
    assert batch["state"].shape == (2, 1, arch.max_state_dim)
    assert batch["embodiment_id"].tolist() == [10, 10]
    assert len(batch["eagle_pixel_values"]) == 2 * 2  # two samples x two views
    assert batch["action_mask"][0, :16, :28].all() and not batch["action_mask"][0, 16:].any()
    # left_arm (RELATIVE, min-max, clipped): (a - s_last) scaled with the per-step relative stats.
    r = raws[1]
    want = minmax(
        r["action.left_arm"] - r["state.left_arm"][-1],
        np.asarray(rel["left_arm"]["min"]),
        np.asarray(rel["left_arm"]["max"]),
    )
    np.testing.assert_allclose(batch["action"][1, :16, :7].numpy(), np.clip(want, -1, 1), atol=1e-6)
    # left_arm state is sin/cos encoded: 14 wide, raw values.
    s = r["state.left_arm"][-1]
    np.testing.assert_allclose(
        batch["state"][1, 0, :14].numpy(), np.concatenate([np.sin(s), np.cos(s)]), atol=1e-6
    )
