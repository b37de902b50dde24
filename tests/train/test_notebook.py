"""The quickstart notebook runs top to bottom (a few training steps) and produces the eval plot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_notebook_executes(cache_dir, tmp_path, monkeypatch):
    out = tmp_path / "nb_run"
    monkeypatch.setenv("QUICKSTART_STEPS", "2")
    monkeypatch.setenv("QUICKSTART_OUT", str(out))
    monkeypatch.setenv("QUICKSTART_CACHE", str(cache_dir))
    monkeypatch.setenv(
        "QUICKSTART_OVERRIDES",
        "data.synthetic.episodes=4 data.synthetic.min_length=20 data.synthetic.max_length=24 "
        "data.synthetic.height=32 data.synthetic.width=32 data.batch_size=2 trainer.limit_val_batches=1 "
        "trainer.export_best=false",
    )
    monkeypatch.setenv("PROJECT_ROOT", str(ROOT))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "predict-the-mean MSE" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert (out / "eval" / "metrics.json").is_file()
