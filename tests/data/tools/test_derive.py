"""Embodiment YAMLs: schema-valid, layouts consistent, synthetic data matches; derive_embodiment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from gr00t_exp.data.config import EmbodimentConfig
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.modality import check_modality, parse_modality
from gr00t_exp.data.synthetic import write_synthetic_dataset
from gr00t_exp.data.tools.derive import derive_embodiment

CONF = Path(__file__).resolve().parents[3] / "conf" / "embodiment"
NAMES = [
    "gr1_arms_only",
    "unitree_g1",
    "unitree_g1_inspire_2cameras",
    "unitree_g1_inspire_26d",
    "so100",
    "new_embodiment",
]


def _load(name: str):
    return OmegaConf.merge(OmegaConf.structured(EmbodimentConfig), OmegaConf.load(CONF / f"{name}.yaml"))


@pytest.mark.parametrize("name", NAMES)
def test_yaml_is_valid_and_synthesises(name: str, tmp_path: Path):
    emb = _load(name)
    assert emb.name == name
    mod = parse_modality(OmegaConf.to_container(emb.modality), f"{name}.yaml")
    for group in ("state", "action"):
        keys = getattr(emb, f"{group}_keys")
        assert set(getattr(emb, f"{group}_normalization")) <= set(keys)
        # keys fed to the model fit the model's padding
        assert sum(getattr(mod, group)[k.split(".", 1)[1]].width for k in keys) <= getattr(
            emb, f"max_{group}_dim"
        )
    out = write_synthetic_dataset(
        tmp_path / name, emb, episodes=1, min_length=4, max_length=4, height=32, width=32
    )
    meta = load_meta(out, emb)  # checks every embodiment key against the written modality
    assert check_modality(meta.modality, meta.info, columns=meta.columns) == []
    assert {f"video.{k}" for k in meta.modality.video} == set(emb.video_keys) | set(emb.extra_video_keys)


def test_layouts_match_reference():
    g1 = _load("unitree_g1").modality
    assert g1["state"]["left_arm"] == {"start": 15, "end": 22} and g1["state"]["right_hand"]["end"] == 43
    assert g1["video"]["rs_view"]["original_key"] == "observation.images.ego_view"
    i28 = _load("unitree_g1_inspire_2cameras")
    assert i28.modality["state"]["right_hand"] == {"start": 21, "end": 28}
    assert list(i28.video_keys) == ["video.cam_right_high", "video.cam_left_wrist"]
    assert _load("unitree_g1_inspire_26d").modality["action"]["left_hand"] == {"start": 14, "end": 20}
    gr1 = _load("gr1_arms_only")
    assert set(gr1.state_normalization.values()) == {"sin_cos"} and set(
        gr1.action_normalization.values()
    ) == {"min_max"}


def test_derive_from_demo(pick_place: Path):
    meta = load_meta(pick_place)
    d = derive_embodiment(meta)
    assert d["name"] == "gr1armsonly"
    assert d["state_keys"][0] == "state.left_arm" and len(d["state_keys"]) == 8
    assert d["video_keys"] == ["video.ego_view"]
    assert d["language_key"] == "annotation.human.action.task_description"
    assert d["max_action_dim"] == 44  # all 44 dims would need a bigger action head
    assert d["modality"]["state"]["waist"] == {"start": 41, "end": 44}


def test_mode_derive_embodiment(pick_place: Path, tmp_path: Path, run_cli, hash_tree):
    before = hash_tree(pick_place)
    dest = tmp_path / "robot.yaml"
    r = run_cli(["mode=derive_embodiment", "data=pick_place", f"tools.output={dest}"], tmp_path / "run")
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = OmegaConf.merge(OmegaConf.structured(EmbodimentConfig), yaml.safe_load(dest.read_text()))
    assert cfg.modality["video"]["ego_view"]["original_key"] == "observation.images.ego_view"
    assert hash_tree(pick_place) == before
    again = run_cli(["mode=derive_embodiment", "data=pick_place", f"tools.output={dest}"], tmp_path / "run2")
    assert again.returncode == 1 and "exists" in again.stdout
