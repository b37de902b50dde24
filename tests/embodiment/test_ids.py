"""Embodiment tag -> projector index tables (gr00t_exp/embodiment/embodiment_ids.yaml)."""

from __future__ import annotations

import json

import pytest

from gr00t_exp.config.compose import compose_config
from gr00t_exp.embodiment import (
    UnknownEmbodimentTagError,
    families,
    family_of,
    projector_index,
    projector_table,
)
from gr00t_exp.train.checks import PreflightError, check_embodiment_fits_model
from tests.fixtures import shared_path

N15 = {"gr1": 24, "oxe_droid": 17, "agibot_genie1": 26, "new_embodiment": 31}


def test_every_family_table_loads_with_distinct_indices():
    assert {"gr00t_n15", "gr00t_n16"} <= set(families())
    for family in families():
        table = projector_table(family)
        assert table and "new_embodiment" in table
        assert len(set(table.values())) == len(table)
        assert all(isinstance(v, int) and v >= 0 for v in table.values())
        with pytest.raises(TypeError):
            table["new_embodiment"] = 0  # type: ignore[index]  # read-only


def test_n15_table_is_upstreams():
    assert dict(projector_table("gr00t_n15")) == N15


def test_n16_table_matches_the_checkpoint_file_and_differs_from_n15():
    ref = json.loads(shared_path("refdata", "gr00t_n16", "embodiment_id.json").read_text())
    assert dict(projector_table("gr00t_n16")) == ref


def test_n16_moves_shared_tags():
    for tag, n15, n16 in (("gr1", 24, 20), ("new_embodiment", 31, 10), ("oxe_droid", 17, 16)):
        assert projector_index("gr00t_n15", tag) == n15
        assert projector_index("gr00t_n16", tag) == n16
    assert projector_index("gr00t_n16", "unitree_g1") == 8


def test_unknown_tag_and_family_errors_name_the_known_ones():
    with pytest.raises(UnknownEmbodimentTagError, match=r"'unitree_g1'.*gr1 \(24\).*new_embodiment \(31\)"):
        projector_index("gr00t_n15", "unitree_g1")
    with pytest.raises(ValueError, match=r"family 'gr00t_n17'.*gr00t_n15"):
        projector_table("gr00t_n17")


def test_model_family_from_the_model_config_name():
    assert family_of("gr00t_n15") == "gr00t_n15"
    assert family_of("gr00t_n15_tiny") == "gr00t_n15"
    assert family_of("gr00t_n16_3b") == "gr00t_n16"
    with pytest.raises(UnknownEmbodimentTagError, match="model.name='pi0'"):
        family_of("pi0")


def test_preflight_checks_the_tag_against_the_models_family():
    cfg = compose_config(["model=gr00t_n15", "embodiment=unitree_g1", "embodiment.embodiment_tag=unitree_g1"])
    assert cfg.model.base_model_path  # pretrained: the tag must have a projector
    with pytest.raises(PreflightError, match=r"'unitree_g1'.*gr00t_n15.*agibot_genie1, gr1, new_embodiment"):
        check_embodiment_fits_model(cfg, [])
    cfg.embodiment.embodiment_tag = "gr1"
    check_embodiment_fits_model(cfg, [])
