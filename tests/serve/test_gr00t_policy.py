"""Gr00tPolicy on a tiny random-init checkpoint exported to tmp_path, directly and behind the server."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("gr00t_exp.model.checkpoint")
pytest.importorskip("gr00t_exp.data.transforms.normalize")

from omegaconf import OmegaConf  # noqa: E402

from gr00t_exp.config.compose import compose_config  # noqa: E402

DIMS = {"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6}
LANG = "annotation.human.action.task_description"


def _stats(d: int, lo: float, hi: float) -> dict:
    return {
        "min": [lo] * d,
        "max": [hi] * d,
        "mean": [0.0] * d,
        "std": [1.0] * d,
        "q01": [lo] * d,
        "q99": [hi] * d,
    }


def _metadata(emb) -> dict:
    mods = {
        "video": {"ego_view": {"resolution": [64, 48], "channels": 3, "fps": 20.0}},
        "state": {
            k: {"absolute": True, "rotation_type": None, "shape": [d], "continuous": True}
            for k, d in DIMS.items()
        },
        # left_arm is trained relative to the state: the policy must add the observed state back
        "action": {
            k: {"absolute": k != "left_arm", "rotation_type": None, "shape": [d], "continuous": True}
            for k, d in DIMS.items()
        },
    }
    return {
        "gr1": {
            "statistics": {
                "state": {k: _stats(d, -1.0, 1.0) for k, d in DIMS.items()},
                "action": {k: _stats(d, -2.0, 2.0) for k, d in DIMS.items()},
            },
            "modalities": mods,
            "embodiment_tag": "gr1",
            "gr00t_exp": {"config": {"embodiment": OmegaConf.to_container(emb, resolve=True)}},
        }
    }


@pytest.fixture(scope="module")
def cfg():
    return compose_config(["embodiment=gr1_arms_only", "model=gr00t_n15_tiny"])


@pytest.fixture(scope="module")
def checkpoint(cfg, tmp_path_factory):
    import torch

    from gr00t_exp.model import build_model, save_pretrained

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt") / "export"
    return save_pretrained(build_model(cfg.model), out, metadata=_metadata(cfg.embodiment))


@pytest.fixture(scope="module")
def policy(cfg, checkpoint):
    from gr00t_exp.serve.policy import Gr00tPolicy

    return Gr00tPolicy(checkpoint, embodiment=cfg.embodiment, device="cpu")


def _obs(batch: int | None = None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    pre = () if batch is None else (batch,)
    obs = {"video.ego_view": rng.integers(0, 255, (*pre, 1, 48, 64, 3), dtype=np.uint8)}
    obs.update({f"state.{k}": rng.uniform(-1, 1, (*pre, 1, d)) for k, d in DIMS.items()})
    obs[LANG] = ["pick the apple"] * (batch or 1)
    return obs


def test_spec_and_card_come_from_the_checkpoint(policy):
    assert policy.spec.video == {"ego_view": (48, 64)}
    assert policy.spec.action == DIMS and policy.spec.action_horizon == 16
    assert policy.spec.relative_actions == {"left_arm": "left_arm"}
    card = policy.model_card()
    assert card["embodiment_tag"] == "gr1" and len(card["normalization_hash"]) == 64
    assert len(card["checkpoint_id"]) == 16
    mc = policy.get_modality_config()
    assert mc["state"].modality_keys == [f"state.{k}" for k in DIMS]


def test_real_inference_single_and_seeded(policy):
    obs = _obs()
    a, info = policy.get_action_with_info(obs, {"seed": 3})
    assert {k: v.shape for k, v in a.items()} == {f"action.{k}": (16, d) for k, d in DIMS.items()}
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in a.values())
    t = info["timing_ms"]
    assert t["backbone"] > 0 and t["action_head"] > 0 and t["preprocess"] > 0
    b = policy.get_action(obs, {"seed": 3})
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_unnormalisation_and_relative_keys(policy, monkeypatch):
    """A fixed normalised prediction: min_max over [-2, 2] maps y to 2y; left_arm adds the state."""
    import torch

    def fake(batch, init_noise=None, num_steps=None):
        b = batch["state"].shape[0]
        return {"action_pred": torch.full((b, 16, 32), 0.25)}

    monkeypatch.setattr(policy.model, "get_action", fake)
    obs = _obs(batch=2)
    a = policy.get_action(obs)
    assert a["action.right_hand"].shape == (2, 16, 6)
    np.testing.assert_allclose(a["action.right_arm"], 0.5, rtol=1e-6)
    expected = np.broadcast_to(0.5 + obs["state.left_arm"][:, -1:, :], (2, 16, 7))
    np.testing.assert_allclose(a["action.left_arm"], expected, rtol=1e-6)
    nested = {
        "video": {"ego_view": obs["video.ego_view"]},
        "state": {k: obs[f"state.{k}"].astype(np.float32) for k in DIMS},
        "language": {LANG: [["pick"], ["place"]]},
    }
    out = policy.get_action(nested)
    assert set(out) == set(DIMS) and out["left_hand"].shape == (2, 16, 6)


def test_mismatched_serving_config_is_refused_naming_the_difference(cfg, checkpoint):
    from gr00t_exp.serve.checkpoint_meta import CheckpointMismatchError
    from gr00t_exp.serve.policy import Gr00tPolicy

    emb = copy.deepcopy(cfg.embodiment)
    emb.action_normalization["action.left_arm"] = "q99"
    emb.video.crop_scale = 0.9
    with pytest.raises(CheckpointMismatchError) as e:
        Gr00tPolicy(checkpoint, embodiment=emb, device="cpu")
    msg = str(e.value)
    assert "embodiment.action_normalization" in msg and "q99" in msg and "embodiment.video.crop_scale" in msg
    with pytest.raises(CheckpointMismatchError, match="no entry for embodiment tag 'new_embodiment'"):
        Gr00tPolicy(checkpoint, embodiment_tag="new_embodiment", embodiment=cfg.embodiment, device="cpu")


def test_served_over_zmq_with_the_upstream_client(policy):
    from gr00t_exp_client import PolicyClient

    from gr00t_exp.serve.zmq_server import ZmqPolicyServer

    from .upstream_client import UpstreamStyleClient

    with ZmqPolicyServer(policy, port=0) as srv:
        with PolicyClient(port=srv.port, timeout_ms=60000) as c:
            md = c.metadata()
            assert md["model_card"]["checkpoint_id"] == policy.model_card()["checkpoint_id"]
            a, info = c.get_action_with_info(_obs(batch=2), {"seed": 0})
            assert a["action.left_arm"].shape == (2, 16, 7)
            assert {"decode", "preprocess", "backbone", "action_head", "postprocess", "encode"} <= set(
                info["timing_ms"]
            )
            with pytest.raises(Exception, match="image size 10x10"):
                bad = _obs()
                bad["video.ego_view"] = np.zeros((1, 10, 10, 3), np.uint8)
                c.get_action(bad)
        up = UpstreamStyleClient(srv.port, timeout_ms=60000)
        assert up.get_action(_obs())["action.right_hand"].shape == (16, 6)
        up.close()


def test_upstream_style_checkpoint_uses_the_serving_embodiment(cfg, checkpoint, policy, tmp_path):
    """No training config inside (as upstream exports): the serving embodiment is required."""
    import json
    import shutil

    from gr00t_exp.serve.policy import Gr00tPolicy
    from gr00t_exp.serve.run import build_policy

    up = tmp_path / "upstream"
    shutil.copytree(checkpoint, up)
    meta_path = up / "experiment_cfg" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["gr1"]["gr00t_exp"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no training embodiment config"):
        Gr00tPolicy(up, device="cpu")
    served = compose_config(
        ["mode=serve", "deploy=zmq", f"deploy.policy.checkpoint={up}", "deploy.policy.device=cpu"]
    )
    upstream = build_policy(served)
    assert upstream.kind == "gr00t" and upstream.spec == policy.spec
    # same weights, different metadata.json: a different checkpoint id, the same statistics hash
    assert upstream.model_card()["checkpoint_id"] != policy.model_card()["checkpoint_id"]
    assert upstream.model_card()["normalization_hash"] == policy.model_card()["normalization_hash"]
