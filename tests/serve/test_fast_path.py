"""The serving fast path's CPU-visible parts: mode resolution, device-side image preprocessing
(run here on the CPU) against the CPU transform, random-init serving and its start-up warm-up."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gr00t_exp.config.compose import compose_config
from gr00t_exp.serve.fast_path import resolve_mode, warmup_observation
from gr00t_exp.serve.run import build_policy

G1 = ["embodiment=unitree_g1_inspire_26d", "model=gr00t_n15_tiny", "mode=serve", "deploy=zmq"]
SMALL = "deploy.policy.image_size=[48,64]"


def test_modes_resolve_per_device():
    assert resolve_mode("auto", "cpu") == "off"
    assert resolve_mode("auto", "cuda") == "cudagraph"
    assert resolve_mode("auto", "cuda:1") == "cudagraph"
    assert resolve_mode("compile", "cuda") == "compile"
    assert resolve_mode("off", "cuda") == "off"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_mode("cudagraph", "cpu")
    with pytest.raises(ValueError, match="use one of"):
        resolve_mode("fast", "cuda")


def test_config_defaults_to_auto():
    cfg = compose_config(G1)
    pc = cfg.deploy.policy
    assert pc.fast_path == "auto" and pc.autocast is None and pc.gpu_preprocess is None
    assert list(pc.warmup_batch_sizes) == [1] and pc.random_init is False


@pytest.fixture(scope="module")
def policies():
    torch.manual_seed(0)
    cfg = compose_config([*G1, "deploy.policy.random_init=true", "deploy.policy.device=cpu", SMALL])
    plain = build_policy(cfg)
    cfg_gpu = compose_config(
        [
            *G1,
            "deploy.policy.random_init=true",
            "deploy.policy.device=cpu",
            "deploy.policy.gpu_preprocess=true",
            "deploy.policy.warmup_batch_sizes=[1,2]",
            SMALL,
        ]
    )
    device_side = build_policy(cfg_gpu)
    device_side.model.load_state_dict(plain.model.state_dict())  # same weights, other preprocessing
    return plain, device_side


def test_random_init_serves_the_embodiment_with_a_startup_report(policies):
    plain, device_side = policies
    card = plain.model_card()
    assert card["random_init"] is True and card["fast_path"] == "off" and card["autocast"] is False
    assert card["gpu_preprocess"] is False
    assert plain.spec.video == {"cam_right_high": (48, 64), "cam_left_wrist": (48, 64)}
    assert sum(plain.spec.state.values()) == 26
    start = card["startup"]
    assert start["batch_sizes"] == [1] and start["warmup_s"] > 0
    assert device_side.model_card()["startup"]["batch_sizes"] == [1, 2]
    actions, info = plain.get_action_with_info(warmup_observation(plain.spec, 1))
    assert {k: v.shape for k, v in actions.items()} == {
        f"action.{k}": (1, 16, d) for k, d in plain.spec.action.items()
    }
    t = info["timing_ms"]
    assert t["model"] > 0 and t["backbone"] > 0 and t["action_head"] > 0


def test_device_side_preprocessing_matches_the_cpu_transform(policies):
    plain, device_side = policies
    obs = warmup_observation(plain.spec, 2, seed=4)
    a, _ = plain.get_action_with_info(obs, {"seed": 7})
    b, _ = device_side.get_action_with_info(obs, {"seed": 7})
    # The device resize rounds after each separable pass as the CPU uint8 kernel does; a few pixels
    # may differ by one level, which moves the actions by far less than their scale.
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=2e-2)
    # The pixels themselves: identical crop, at most one level apart.
    from gr00t_exp.data.transforms.video_batch import BatchAugment
    from gr00t_exp.serve.fast_path import eval_augment

    video = np.stack([obs[f"video.{k}"] for k in plain.video_keys], axis=2)
    cpu = torch.from_numpy(plain.video_transform.batch(video)).float()  # (B, T, V, S, S, 3)
    aug = eval_augment(plain.video_transform, 2, *video.shape[-3:-1])
    from gr00t_exp.data.collate import stack_augment

    batch = {"video": torch.from_numpy(video), "augment": stack_augment([{"augment": x} for x in aug])}
    batch["augment"]["mean"] = torch.zeros(3)
    batch["augment"]["std"] = torch.ones(3)
    dev = BatchAugment()(batch)["eagle_pixel_values"]  # (B*T*V, 3, S, S), 0-255 scale
    ref = cpu.reshape(-1, *cpu.shape[-3:]).permute(0, 3, 1, 2)
    diff = (dev - ref).abs()
    assert diff.max() <= 1.0 and (diff > 0).float().mean() < 0.02


def test_bench_serve_with_the_real_model_reports_its_stages(tmp_path):
    """bench=serve policy=gr00t: the server builds the random-init model as mode=serve does."""
    import json

    from gr00t_exp.bench.serve import run as bench_run

    cfg = compose_config(
        [
            *G1,
            "mode=bench",
            "bench=serve",
            "bench.iters=4",
            "bench.warmup=1",
            "bench.params.policy=gr00t",
            "bench.params.transports=[zmq]",
            "bench.params.height=48",
            "bench.params.width=64",
            "deploy.policy.device=cpu",
        ],
        output_dir=tmp_path,
    )
    assert bench_run(cfg) == 0
    res = json.loads((tmp_path / "bench_serve.json").read_text())
    assert res["model_card"]["random_init"] is True and res["model_card"]["startup"]["warmup_s"] > 0
    assert set(res["observation"]) >= {"video.cam_right_high", "video.cam_left_wrist", "state.left_arm"}
    stages = res["zmq"]["server_stages_p50_ms"]
    assert stages["model"] > 0 and stages["preprocess"] > 0
    assert res["zmq"]["round_trip_ms"]["p50"] >= res["zmq"]["policy_ms"]["p50"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_graphed_policy_preprocesses_in_the_graph_and_equals_the_plain_path():
    """On the GPU the default fast path replays the image preprocessing with the model: the same
    actions as the plain path with the same device-side preprocessing (same bf16 weights, same
    seed), for new frames on every call; the frames matter to the actions."""
    torch.manual_seed(0)
    over = [
        *G1,
        "deploy.policy.random_init=true",
        "deploy.policy.device=cuda",
        "deploy.policy.autocast=false",
        SMALL,
    ]
    plain = build_policy(compose_config([*over, "deploy.policy.fast_path=off"]))
    graphed = build_policy(compose_config([*over, "deploy.policy.fast_path=auto"]))
    with torch.no_grad():
        for p, q in zip(graphed.model.parameters(), plain.model.parameters(), strict=True):
            p.copy_(q)
    graphed.fast.graphed.reset()  # the graph captured at start-up holds values derived from the old weights
    assert graphed.model_card()["fast_path"] == "cudagraph" and graphed.gpu_preprocess
    obs = [warmup_observation(plain.spec, 1, seed=s) for s in (1, 2)]
    obs[1] = {
        **obs[0],
        **{k: v for k, v in obs[1].items() if k.startswith("video.")},
    }  # only the frames differ
    got = []
    for o in obs:
        a, _ = plain.get_action_with_info(o, {"seed": 7})
        b, info = graphed.get_action_with_info(o, {"seed": 7})
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=2e-3)
        got.append(a)
    assert max(np.abs(got[0][k] - got[1][k]).max() for k in got[0]) > 2e-2
    assert len(graphed.fast.graphed.signatures) == 1 and info["timing_ms"]["model"] > 0
