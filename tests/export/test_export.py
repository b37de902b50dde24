"""mode=export: hub re-export (dtype cast, metadata kept) and ONNX graphs that match PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gr00t_exp.config.compose import compose_config
from gr00t_exp.export.run import load_model, sample_batch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    from gr00t_exp.model import build_model, save_pretrained

    cfg = compose_config(["model=gr00t_n15_tiny"])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    meta = {
        "new_embodiment": {
            "statistics": {"state": {}, "action": {}},
            "modalities": {},
            "embodiment_tag": "new_embodiment",
        }
    }
    return save_pretrained(model, tmp_path_factory.mktemp("ckpt") / "tiny", metadata=meta)


def test_hub_export_casts_dtype_and_keeps_metadata(tiny_ckpt, tmp_path):
    out = tmp_path / "bf16"
    cfg = compose_config(
        [
            "mode=export",
            "export.format=hub",
            f"export.checkpoint={tiny_ckpt}",
            f"export.output={out}",
            "export.dtype=bfloat16",
        ],
        output_dir=tmp_path,
    )
    from gr00t_exp.export.run import run

    assert run(cfg) == 0
    from safetensors import safe_open

    files = sorted(out.glob("*.safetensors"))
    assert files
    with safe_open(str(files[0]), "pt") as f:
        name = next(iter(f.keys()))
        assert f.get_tensor(name).dtype == torch.bfloat16
    meta = json.loads((out / "experiment_cfg" / "metadata.json").read_text())
    assert "new_embodiment" in meta
    # The bf16 export loads back and gives close actions to the float32 original.
    from gr00t_exp.model import load_pretrained

    a = load_pretrained(tiny_ckpt).eval()
    b = load_pretrained(out, dtype=torch.float32).eval()
    batch = sample_batch(a)
    noise = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(1))
    pa = a.get_action(batch, init_noise=noise)["action_pred"]
    pb = b.get_action(batch, init_noise=noise)["action_pred"]
    assert torch.allclose(pa, pb, atol=5e-2), (pa - pb).abs().max()


@pytest.mark.slow
def test_onnx_export_matches_pytorch_on_a_new_batch_shape(tiny_ckpt, tmp_path):
    """Graphs traced on 1 view / batch 1 run on 2 views / batch 2 (dynamic axes) and match torch."""
    import onnxruntime as ort

    out = tmp_path / "onnx"
    proc = subprocess.run(
        [
            sys.executable,
            "run.py",
            "mode=export",
            "export.format=onnx",
            f"export.checkpoint={tiny_ckpt}",
            f"export.output={out}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [g["file"] for g in manifest["graphs"]] == ["backbone.onnx", "action_head.onnx"]
    assert all(g["max_abs_diff"] < 1e-3 for g in manifest["graphs"])
    assert (out / "experiment_cfg" / "metadata.json").is_file()

    cfg = compose_config([f"export.checkpoint={tiny_ckpt}"])
    model = load_model(cfg)
    batch = sample_batch(model, num_views=2, batch_size=2, seed=3)
    batch["eagle_attention_mask"][1, :3] = 0  # left padding in row 1
    noise = torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(2))
    ref = model.get_action(batch, init_noise=noise)
    bb = ort.InferenceSession(str(out / "backbone.onnx"))
    feats = bb.run(
        None, {k: batch[k].numpy() for k in ("eagle_input_ids", "eagle_attention_mask", "eagle_pixel_values")}
    )[0]
    np.testing.assert_allclose(feats, ref["backbone_features"].numpy(), atol=1e-3)
    head = ort.InferenceSession(str(out / "action_head.onnx"))
    act = head.run(
        None,
        {
            "backbone_features": feats,
            "state": batch["state"].numpy(),
            "embodiment_id": batch["embodiment_id"].numpy(),
            "init_noise": noise.numpy(),
        },
    )[0]
    np.testing.assert_allclose(act, ref["action_pred"].numpy(), atol=1e-3)


def test_export_rejects_a_missing_checkpoint(tmp_path):
    from gr00t_exp.export.run import run

    cfg = compose_config(["mode=export", f"export.checkpoint={tmp_path / 'nope'}"], output_dir=tmp_path)
    assert run(cfg) == 2
