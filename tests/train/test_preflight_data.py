"""Training refuses bad data before step 1 (broken copies of robot_sim.PickNPlace), names a file
that breaks mid-run, and checks its output directories."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from gr00t_exp.data.config import EmbodimentConfig
from gr00t_exp.data.dataset import Gr00tDataset
from gr00t_exp.data.errors import DatasetError
from gr00t_exp.data.meta import load_meta
from gr00t_exp.data.stats import compute_stats
from gr00t_exp.train.checkpoint import remove_stale_temp
from gr00t_exp.train.checks import PreflightError, check_data, check_datasets, check_output_dirs
from gr00t_exp.train.run import run
from tests.fixtures import REPO_ROOT, shared_path


@pytest.fixture(scope="module")
def pick_place() -> Path:
    return shared_path("datasets", "robot_sim.PickNPlace", "meta", "info.json").parents[1]


@pytest.fixture
def pick_place_copy(pick_place: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "robot_sim.PickNPlace"
    shutil.copytree(pick_place, dst)
    return dst


@pytest.fixture(scope="module")
def gr1_embodiment():
    schema = OmegaConf.structured(EmbodimentConfig)
    return OmegaConf.merge(schema, OmegaConf.load(REPO_ROOT / "conf" / "embodiment" / "gr1_arms_only.yaml"))


def _set_value(root: Path, ep: int, column: str, row: int, value: float) -> None:
    path = root / f"data/chunk-000/episode_{ep:06d}.parquet"
    table = pq.read_table(path)
    cols = {n: table.column(n).to_pylist() for n in table.column_names}
    cols[column][row][3] = value
    pq.write_table(pa.table(cols, schema=table.schema), path)


def _edit_episodes(root: Path, fn) -> None:
    path = root / "meta/episodes.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    path.write_text("".join(json.dumps(r) + "\n" for r in fn(rows)))


def _nan_state(root: Path) -> None:
    _set_value(root, 2, "observation.state", 5, float("nan"))


def _inf_action(root: Path) -> None:
    _set_value(root, 1, "action", 7, float("inf"))


def _fps(root: Path) -> None:
    p = root / "meta/info.json"
    p.write_text(json.dumps({**json.loads(p.read_text()), "fps": 30}))


def _short_length(root: Path) -> None:
    _edit_episodes(
        root, lambda rows: [{**r, "length": r["length"] - 16} if r["episode_index"] == 1 else r for r in rows]
    )


def _missing_line(root: Path) -> None:
    _edit_episodes(root, lambda rows: [r for r in rows if r["episode_index"] != 4])


def _corrupt_mp4(root: Path) -> None:
    p = root / "videos/chunk-000/observation.images.ego_view/episode_000003.mp4"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


def _truncated_parquet(root: Path) -> None:
    p = root / "data/chunk-000/episode_000002.parquet"
    p.write_bytes(p.read_bytes()[:-200])


@pytest.mark.parametrize(
    "damage,needle",
    [
        (
            _nan_state,
            "episode_000002.parquet [observation.state]: 1 NaN/inf value(s) in episode 2 (first at row 5)",
        ),
        (_inf_action, "episode_000001.parquet [action]: 1 NaN/inf value(s) in episode 1 (first at row 7)"),
        (_fps, "fps mismatch: video is 20 fps but info.json fps is 30"),
        (_short_length, "470 rows but meta/episodes.jsonl says length 454 (16 rows would never be sampled)"),
        (_missing_line, "1 episode parquet file(s) are not listed, so they are never used"),
        (_corrupt_mp4, "episode_000003.mp4 [video.ego_view]: cannot decode"),
        (_truncated_parquet, "episode_000002.parquet [episode 2]: cannot read parquet"),
    ],
    ids=[
        "nan_state",
        "inf_action",
        "fps",
        "short_length",
        "missing_line",
        "corrupt_mp4",
        "truncated_parquet",
    ],
)
def test_preflight_refuses_broken_copy(pick_place_copy: Path, gr1_embodiment, damage, needle):
    damage(pick_place_copy)
    meta = load_meta(pick_place_copy, gr1_embodiment)  # metadata alone looks fine
    with pytest.raises(PreflightError) as e:
        check_data([meta])
    assert needle in str(e.value) and "Fix:" in str(e.value), str(e.value)


def test_preflight_passes_the_intact_demo(pick_place: Path, gr1_embodiment):
    check_data([load_meta(pick_place, gr1_embodiment)])


def test_training_exits_2_before_step_1_on_nan(pick_place_copy: Path, make_cfg, capsys, tmp_path):
    _nan_state(pick_place_copy)
    cfg = make_cfg(2, ["data=lerobot", f"data.sources=[{{path:{pick_place_copy}}}]", "data.val_episodes=1"])
    assert run(cfg) == 2
    err = capsys.readouterr().err
    assert "NaN/inf value(s) in episode 2" in err and "mode=validate" in err
    assert not (tmp_path / "run" / "checkpoints").exists() or not any(
        (tmp_path / "run" / "checkpoints").iterdir()
    )


def test_video_broken_mid_run_names_file_and_episode(pick_place_copy: Path, gr1_embodiment):
    meta = load_meta(pick_place_copy, gr1_embodiment)
    ds = Gr00tDataset(meta, gr1_embodiment, compute_stats(meta), video_backend="pyav", training=False)
    ep = meta.episodes[-1].index
    path = meta.video_path(ep, "observation.images.ego_view")
    path.write_bytes(b"\0" * 100)  # after the pre-flight: the file breaks while training runs
    with pytest.raises(
        DatasetError, match=rf"episode_{ep:06d}.mp4 \[episode {ep} video.ego_view\]: cannot decode"
    ):
        ds.samples_at([(ep, 0)])


def test_worker_reraise_keeps_the_message():
    # torch rebuilds a worker's exception from its formatted traceback text
    text = "Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n  ...\ngr00t_exp.data.errors.DatasetError: videos/a.mp4 [episode 3]: cannot decode. Fix: restore it"
    assert str(DatasetError(text)) == "videos/a.mp4 [episode 3]: cannot decode. Fix: restore it"


def test_output_dirs_writable_with_room(tmp_path: Path):
    check_output_dirs([tmp_path / "run", tmp_path / "run" / "checkpoints"], 1 << 20)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PreflightError, match=r"file/run is not writable.*set hydra.run.dir"):
        check_output_dirs([blocker / "run"])
    with pytest.raises(PreflightError, match=r"GiB free, less than the .* GiB a checkpoint needs"):
        check_output_dirs([tmp_path], 1 << 60)


def test_killed_checkpoint_write_leftovers_are_removed(tmp_path: Path):
    dead = tmp_path / ".step=0000003.ckpt.tmp-999999999-abc"  # no such pid
    live = tmp_path / f".step=0000006.ckpt.tmp-{os.getpid()}-xyz"  # a write in progress
    done = tmp_path / "step=0000003.ckpt"
    for p in (dead, live, done):
        p.write_bytes(np.zeros(8).tobytes())
    assert remove_stale_temp(tmp_path) == [dead]
    assert live.exists() and done.exists()


def test_metadata_error_heading_says_what_kind(pick_place_copy: Path, gr1_embodiment):
    cfg = OmegaConf.create({"embodiment": gr1_embodiment})
    (pick_place_copy / "meta" / "modality.json").write_text("{")
    with pytest.raises(PreflightError, match=r"cannot be read:\n.*modality.json: not valid JSON") as e:
        check_datasets(cfg, [pick_place_copy])
    assert "does not fit" not in str(e.value)
    cfg.embodiment.state_keys = ["state.left_arm", "state.tail"]
    (pick_place_copy / "meta" / "modality.json").unlink()
    shutil.copy(
        shared_path("datasets", "robot_sim.PickNPlace", "meta", "modality.json"), pick_place_copy / "meta"
    )
    with pytest.raises(PreflightError, match=r"does not fit embodiment=gr1_arms_only:\n.*state\.tail"):
        check_datasets(cfg, [pick_place_copy])
