"""EmbodimentLayout: built from every shipped embodiment, the prefix convention, mismatch errors,
and the consumers (serving, replay, robot, export metadata) reading widths from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from gr00t_exp.data.config import EmbodimentConfig
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.modality import parse_modality
from gr00t_exp.data.stats import load_or_compute_stats
from gr00t_exp.data.synthetic import write_synthetic_dataset
from gr00t_exp.embodiment import (
    EmbodimentLayout,
    EmbodimentLayoutError,
    bare,
    embodiment_config,
    prefixed,
    split_key,
)
from gr00t_exp.robot.config import RobotConfig
from gr00t_exp.robot.layout import RobotLayout
from gr00t_exp.serve.checkpoint_meta import modality_from_metadata, video_sizes_from_metadata
from gr00t_exp.serve.replay import ReplayPolicy
from gr00t_exp.serve.run import spec_from_embodiment
from gr00t_exp.train.metadata import build_metadata
from tests.fixtures import REPO_ROOT

EMBODIMENT_FILES = sorted((REPO_ROOT / "conf" / "embodiment").glob("*.yaml"))


def compose(path: Path):
    """An embodiment YAML merged onto the schema, as Hydra composes it."""
    return OmegaConf.merge(OmegaConf.structured(EmbodimentConfig), OmegaConf.load(path))


@pytest.fixture(scope="module")
def g1_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A synthetic unitree_g1 dataset: 43-D columns whose model keys start at dim 15, so a width
    taken as `end` instead of `end - start` (or a slice from 0) is visible."""
    emb = compose(REPO_ROOT / "conf" / "embodiment" / "unitree_g1.yaml")
    out = tmp_path_factory.mktemp("g1") / "unitree_g1"
    root = write_synthetic_dataset(out, emb, episodes=2, min_length=20, max_length=24, height=32, width=48)
    return root, emb


@pytest.mark.parametrize("path", EMBODIMENT_FILES, ids=lambda p: p.stem)
def test_every_embodiment_has_the_widths_and_slices_of_its_modality(path: Path):
    cfg = compose(path)
    raw = OmegaConf.to_container(cfg, resolve=True)
    layout = EmbodimentLayout.build(cfg)
    assert layout.name == path.stem and layout.has_widths
    for group in ("state", "action"):
        keys = [bare(k, group) for k in raw[f"{group}_keys"]]
        assert layout.keys(group) == keys
        assert layout.prefixed_keys(group) == list(raw[f"{group}_keys"])
        spans = raw["modality"][group]
        assert layout.widths(group) == {k: spans[k]["end"] - spans[k]["start"] for k in keys}
        offset = 0
        for spec in layout.specs(group):
            assert spec.column_slice == slice(spans[spec.key]["start"], spans[spec.key]["end"])
            assert spec.vector_slice == slice(offset, offset + spec.width)  # concatenated in key order
            assert spec.normalization == raw[f"{group}_normalization"].get(spec.name, "none")
            offset += spec.width
        assert layout.width(group) == offset
    assert layout.keys("video") == [bare(k, "video") for k in raw["video_keys"]]
    assert [v.column for v in layout.video] == [
        raw["modality"]["video"][bare(k, "video")]["original_key"] for k in raw["video_keys"]
    ]
    assert layout.action_horizon == len(raw["action_indices"])
    assert layout.language_column is not None


@pytest.mark.parametrize("path", EMBODIMENT_FILES, ids=lambda p: p.stem)
def test_dictconfig_dataclass_and_dict_give_one_layout(path: Path):
    cfg = compose(path)
    typed = OmegaConf.to_object(cfg)
    assert isinstance(embodiment_config(cfg), EmbodimentConfig)
    as_dict = OmegaConf.to_container(cfg, resolve=True)
    assert EmbodimentLayout.build(cfg) == EmbodimentLayout.build(typed) == EmbodimentLayout.build(as_dict)


def test_layout_is_immutable():
    layout = EmbodimentLayout.build(compose(EMBODIMENT_FILES[0]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.state[0].start = 3  # type: ignore[misc]
    assert isinstance(layout.state, tuple) and isinstance(layout.action_indices, tuple)


@pytest.mark.parametrize(
    "group,key",
    [
        ("state", "left_arm"),
        ("action", "gripper"),
        ("video", "ego_view"),
        ("annotation", "human.action.task"),
    ],
)
def test_prefix_functions_round_trip(group: str, key: str):
    full = prefixed(group, key)
    assert full == f"{group}.{key}"
    assert bare(full) == bare(full, group) == key
    assert prefixed(group, full) == full  # idempotent
    assert bare(key, group) == key  # a bare key stays bare
    assert split_key(full) == (group, key)


def test_prefix_edge_cases():
    # Only the named group's prefix is stripped: an annotation key keeps its inner dots.
    assert bare("annotation.human.action.task_description", "annotation") == "human.action.task_description"
    assert bare("action.x", "state") == "action.x"
    with pytest.raises(ValueError, match="no modality prefix"):
        split_key("left_arm")
    with pytest.raises(ValueError, match="unknown modality group"):
        prefixed("proprio", "x")


def test_a_key_missing_from_the_modality_names_key_and_source():
    cfg = compose(REPO_ROOT / "conf" / "embodiment" / "so100.yaml")
    other = parse_modality(
        {"state": {"arm": {"start": 0, "end": 5}}, "action": {"arm": {"start": 0, "end": 5}}}
    )
    with pytest.raises(
        EmbodimentLayoutError, match=r"state\.single_arm.*my_ds/meta/modality.json.*has: arm"
    ) as e:
        EmbodimentLayout.build(cfg, other, source="my_ds/meta/modality.json")
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)
    assert "choose the matching embodiment" in str(e.value)


def test_duplicate_and_camera_mismatches_are_errors():
    cfg = compose(REPO_ROOT / "conf" / "embodiment" / "so100.yaml")
    cfg.action_keys = ["action.gripper", "action.gripper"]
    with pytest.raises(EmbodimentLayoutError, match=r"action\.gripper more than once"):
        EmbodimentLayout.build(cfg)
    cfg = compose(REPO_ROOT / "conf" / "embodiment" / "so100.yaml")
    cfg.video_keys = ["video.wrist"]
    with pytest.raises(EmbodimentLayoutError, match=r"video\.wrist.*has: webcam"):
        EmbodimentLayout.build(cfg)


def test_without_a_modality_keys_are_known_but_widths_are_not():
    cfg = compose(REPO_ROOT / "conf" / "embodiment" / "so100.yaml")
    cfg.modality = None
    layout = EmbodimentLayout.build(cfg)
    assert layout.keys("state") == ["single_arm", "gripper"] and not layout.has_widths
    assert layout.known_widths("state") == {}
    with pytest.raises(EmbodimentLayoutError, match=r"state\.single_arm: width unknown"):
        layout.widths("state")
    with pytest.raises(ValueError, match="no `modality` layout"):
        spec_from_embodiment(cfg)


def test_from_meta_reads_dataset_slices_and_frame_sizes(g1_dataset):
    root, emb = g1_dataset
    meta = load_meta(root, emb)
    layout = EmbodimentLayout.from_meta(emb, meta)
    assert layout.spec("state", "state.left_arm").column_slice == slice(15, 22)
    assert layout.widths("action") == {"left_arm": 7, "right_arm": 7, "left_hand": 7, "right_hand": 7}
    assert layout.video_sizes() == {"rs_view": (32, 48)} and layout.video[0].channels == 3
    assert layout.columns("action") == ["action"]


def test_serving_replay_robot_and_export_read_the_layout_widths(g1_dataset):
    """Every consumer agrees with the layout on a modality whose keys do not start at 0."""
    root, emb = g1_dataset
    layout = EmbodimentLayout.build(emb)
    widths = layout.widths("action")
    assert widths["left_arm"] == 7 and layout.spec("action", "left_arm").start == 15

    spec = spec_from_embodiment(emb, [32, 48])
    assert spec.state == layout.widths("state") and spec.action == widths
    assert spec.action_horizon == layout.action_horizon

    policy = ReplayPolicy(root, state_keys=list(emb.state_keys), action_keys=list(emb.action_keys))
    assert policy.spec.action == widths and policy.spec.video == {k: (32, 48) for k in policy.video_keys}
    recorded = np.stack(pq.read_table(root / "data/chunk-000/episode_000000.parquet")["action"].to_pylist())
    np.testing.assert_allclose(policy._actions["left_arm"], recorded[:, 15:22], rtol=1e-6)
    np.testing.assert_allclose(policy._actions["right_hand"], recorded[:, 36:43], rtol=1e-6)

    g1_26 = compose(REPO_ROOT / "conf" / "embodiment" / "unitree_g1_inspire_26d.yaml")
    robot = RobotLayout.build(g1_26, RobotConfig())
    assert {k: robot.dim(k) for k in robot.action_keys} == EmbodimentLayout.build(g1_26).widths("action")

    meta = load_meta(root, emb)
    entry = build_metadata(emb, meta, load_or_compute_stats(meta, root.parent / "cache"))["new_embodiment"]
    assert {k: m["shape"][0] for k, m in entry["modalities"]["action"].items()} == widths
    assert entry["modalities"]["video"]["rs_view"]["resolution"] == [48, 32]  # [W, H]


def test_a_checkpoints_metadata_gives_the_serving_layout():
    """Gr00tPolicy's layout: widths, absolute flags, rotation types and frame sizes as recorded in
    metadata.json (resolution is [W, H] there), over the training embodiment's keys."""
    entry = {
        "modalities": {
            "state": {"eef": {"shape": [4], "rotation_type": "quaternion", "absolute": True}},
            "action": {"eef": {"shape": [4], "absolute": False}, "grip": {"shape": [1], "continuous": False}},
            "video": {"cam": {"resolution": [64, 48], "channels": 3}},
        }
    }
    emb = {
        "name": "arm",
        "video_keys": ["video.cam"],
        "state_keys": ["state.eef"],
        "action_keys": ["action.eef", "action.grip"],
        "state_target_rotations": {"state.eef": "rotation_6d"},
    }
    mod = modality_from_metadata(entry, "ckpt/experiment_cfg/metadata.json")
    layout = EmbodimentLayout.build(emb, mod, video_sizes=video_sizes_from_metadata(entry), source="ckpt")
    assert layout.widths("state") == {"eef": 4} and layout.widths("action") == {"eef": 4, "grip": 1}
    eef = layout.spec("state", "eef")
    assert eef.rotation_type == "quaternion" and eef.target_rotation == "rotation_6d"
    assert not layout.spec("action", "eef").absolute and not layout.spec("action", "grip").continuous
    assert [s.vector_slice for s in layout.action] == [slice(0, 4), slice(4, 5)]
    assert layout.video_sizes() == {"cam": (48, 64)}
    emb["action_keys"] = ["action.eef", "action.wrist"]
    with pytest.raises(EmbodimentLayoutError, match=r"action\.wrist.*ckpt"):
        EmbodimentLayout.build(emb, mod, source="ckpt")
