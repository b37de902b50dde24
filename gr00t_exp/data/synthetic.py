"""A synthetic GR00T-flavoured LeRobot v2.1 dataset with real H.264 mp4 files.

The task is learnable from state + image + language:
- each episode shows a coloured blob at a fixed random position (bx, by) in [-1, 1]^2, drawn in
  every camera (camera c sees it shifted by c * 0.2 so views differ);
- a fixed projection P (D x 2, independent of `seed`) maps the blob position to a target pose
  target = P @ [bx, by] in state space;
- the task text selects the behaviour: "reach the ball" moves the state toward the target,
  "move away from the ball" toward its mirror image -target, "wave" settles each dim into the
  nearest zero of sin(3 s + 1):
      action_t = state_t + delta(task, state_t, target),   state_{t+1} = action_t + small noise
  so the action is a deterministic function of (state, image, task text), and every behaviour
  stays bounded (a min-max normalisation is not stretched by run-away episodes).

Idempotent: a manifest (`.synthetic_manifest.json`) records the parameters; a call with the same
parameters returns the existing dataset without writing. The dataset is written to a temp dir and
moved into place, so a crash never leaves a half-written dataset that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from gr00t_exp.data.config import EmbodimentConfig
from gr00t_exp.data.writer import LeRobotWriter, build_features, default_names, staged_dir
from gr00t_exp.embodiment import bare, embodiment_config

log = logging.getLogger(__name__)

MANIFEST = ".synthetic_manifest.json"
WRITER_VERSION = 2
RATE = 0.08  # share of the remaining distance covered per step (reach / move away)
TASKS = ["reach the ball", "move away from the ball", "wave"]
VALID_TASK = "valid"
# Default slice widths when an embodiment has no `modality` layout.
_DEFAULT_WIDTHS = {"gripper": 1, "hand": 6, "waist": 3, "neck": 3, "leg": 6, "arm": 7}
COLORS = [(230, 40, 40), (40, 200, 60), (50, 80, 230)]


def _default_width(key: str) -> int:
    for word, width in _DEFAULT_WIDTHS.items():
        if word in key:
            return width
    return 7


def layout_for(embodiment: Optional[EmbodimentConfig]) -> dict:
    """The modality.json layout to write: the embodiment's `modality`, or one derived from its keys
    (default widths by name) when it has none."""
    if embodiment is not None and embodiment.modality:
        return json.loads(json.dumps(embodiment.modality))
    out: dict[str, dict] = {"state": {}, "action": {}, "video": {}, "annotation": {}}
    for group in ("state", "action"):
        keys = [bare(k, group) for k in getattr(embodiment, f"{group}_keys", [])] or ["arm", "gripper"]
        start = 0
        for k in keys:
            w = _default_width(k)
            out[group][k] = {"start": start, "end": start + w}
            start += w
    vids = list(embodiment.video_keys + embodiment.extra_video_keys) if embodiment is not None else []
    for v in [bare(v, "video") for v in vids] or ["front"]:
        out["video"][v] = {"original_key": f"observation.images.{v}"}
    out["annotation"][bare(_language_key(embodiment), "annotation")] = {}
    return out


def _language_key(embodiment: Optional[EmbodimentConfig]) -> str:
    return embodiment.language_key if embodiment is not None else EmbodimentConfig.language_key


def _widths(layout: dict, group: str) -> dict[str, int]:
    """Concatenated width per original column of a state/action group."""
    default_col = "observation.state" if group == "state" else "action"
    out: dict[str, int] = {}
    for spec in layout.get(group, {}).values():
        col = spec.get("original_key", default_col)
        out[col] = max(out.get(col, 0), int(spec["end"]))
    return out


def _draw(height: int, width: int, bx: float, by: float, cam: int) -> np.ndarray:
    """A frame: a vertical gradient background and a filled disc at (bx, by) (+ camera shift)."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = 60 + (yy * 60 // max(height, 1))
    img[..., 1] = 60 + 20 * cam
    img[..., 2] = 90
    cx = (np.clip(bx + 0.2 * cam, -1, 1) * 0.4 + 0.5) * width
    cy = (by * 0.4 + 0.5) * height
    r = max(3.0, min(height, width) / 8)
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    img[disc] = COLORS[cam % len(COLORS)]
    return img


def _params(
    embodiment: Optional[EmbodimentConfig],
    episodes: int,
    min_length: int,
    max_length: int,
    fps: int,
    height: int,
    width: int,
    seed: int,
    layout: dict,
    language_key: str,
) -> dict:
    return {
        "writer_version": WRITER_VERSION,
        "embodiment": embodiment.name if embodiment is not None else "default",
        "layout": layout,
        "language_key": language_key,
        "episodes": episodes,
        "min_length": min_length,
        "max_length": max_length,
        "fps": fps,
        "height": height,
        "width": width,
        "seed": seed,
    }


def write_synthetic_dataset(
    out_dir: str | Path,
    embodiment: Any = None,
    episodes: int = 8,
    min_length: int = 40,
    max_length: int = 60,
    fps: int = 20,
    height: int = 64,
    width: int = 64,
    seed: int = 0,
) -> Path:
    """Write (or reuse) a synthetic v2.1 dataset at out_dir for `embodiment`; return out_dir."""
    out = Path(out_dir).expanduser().resolve()
    if min_length < 1 or max_length < min_length or episodes < 1:
        raise ValueError(
            f"need episodes >= 1 and 1 <= min_length <= max_length, got {episodes}, {min_length}, {max_length}"
        )
    embodiment = embodiment_config(embodiment) if embodiment is not None else None
    layout = layout_for(embodiment)
    language_key = _language_key(embodiment)
    params = _params(
        embodiment, episodes, min_length, max_length, fps, height, width, seed, layout, language_key
    )
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    manifest = out / MANIFEST
    if manifest.exists():
        try:
            if json.loads(manifest.read_text()).get("digest") == digest:
                return out
        except json.JSONDecodeError:
            pass
        log.info("synthetic dataset at %s has other parameters: rewriting it", out)
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists and is not a synthetic dataset written by gr00t_exp ({MANIFEST} missing); "
            "choose another data.synthetic.out_dir or remove the folder"
        )
    with staged_dir(out, replace=True) as tmp:  # an older synthetic dataset is swapped out at the end
        _write(tmp, params)
        (tmp / MANIFEST).write_text(json.dumps({"digest": digest, "params": params}, indent=2))
    log.info("wrote synthetic dataset %s (%d episodes)", out, episodes)
    return out


def _write(root: Path, p: dict) -> None:
    from gr00t_exp.data.modality import parse_modality

    layout = p["layout"]
    modality = parse_modality(layout, "synthetic layout")
    fps, height, width = p["fps"], p["height"], p["width"]
    rng = np.random.default_rng(p["seed"])
    proj_rng = np.random.default_rng(12345)  # the task's projection does not depend on the seed
    state_cols = _widths(layout, "state")
    action_cols = _widths(layout, "action")
    videos = {k: v.original_key for k, v in modality.video.items()}
    ann_cols = {name: modality.column("annotation", name) for name in modality.annotation}
    lang_key = bare(p["language_key"], "annotation")
    lang_col = modality.column("annotation", lang_key)
    if lang_col not in ann_cols.values():
        ann_cols[lang_key] = lang_col
    task_texts = TASKS + ([VALID_TASK] if any("validity" in c for c in ann_cols.values()) else [])
    task_index = {t: i for i, t in enumerate(task_texts)}
    # state space dimensions that actually follow the task (the action columns keyed like the state)
    proj = {col: proj_rng.uniform(-1, 1, size=(w, 2)) for col, w in state_cols.items()}
    features = build_features(
        videos={key: (height, width) for key in sorted(videos.values())},
        vectors={col: default_names(col, w) for col, w in {**state_cols, **action_cols}.items()},
        fps=fps,
        scalars={
            "next.reward": "float32",
            "next.done": "bool",
            **{col: "int64" for col in sorted(set(ann_cols.values()))},
        },
    )
    writer = LeRobotWriter(root, fps=fps, robot_type=str(p["embodiment"]), features=features, modality=layout)
    for text in task_texts:  # every task text is listed, in this order, used or not
        writer.task_index(text)

    total = 0
    for ep in range(p["episodes"]):
        length = int(rng.integers(p["min_length"], p["max_length"] + 1))
        task = TASKS[ep % len(TASKS)]
        bx, by = rng.uniform(-0.8, 0.8, size=2)
        target = {col: proj[col] @ np.array([bx, by]) for col in state_cols}
        state = {col: rng.uniform(-0.5, 0.5, size=w) for col, w in state_cols.items()}
        states = {col: np.zeros((length, w)) for col, w in state_cols.items()}
        actions = {col: np.zeros((length, w)) for col, w in action_cols.items()}
        for t in range(length):
            for col in state_cols:
                s = state[col]
                states[col][t] = s
                if task == TASKS[0]:
                    delta = RATE * (target[col] - s)
                elif task == TASKS[1]:
                    delta = RATE * (-target[col] - s)
                else:
                    delta = 0.1 * np.sin(3.0 * s + 1.0)
                state[col] = s + delta + rng.normal(0, 0.002, size=s.shape)
                a = s + delta
                if col == "observation.state" and "action" in actions:
                    w = min(len(a), actions["action"].shape[1])
                    actions["action"][t, :w] = a[:w]
        # action columns that are not the state's mirror get a deterministic function of the target
        for col, arr in actions.items():
            if col == "action" and "observation.state" in state_cols:
                continue
            arr[:] = np.tanh(
                np.arange(arr.shape[1])[None, :] * 0.1 + bx + by * np.linspace(0, 1, length)[:, None]
            )
        ts = (np.arange(length) / fps).astype(np.float32)
        cols: dict[str, pa.Array] = {}
        for col, arr in states.items():
            cols[col] = pa.array(list(arr.astype(np.float32)), type=pa.list_(pa.float32()))
        for col, arr in actions.items():
            cols[col] = pa.array(list(arr.astype(np.float32)), type=pa.list_(pa.float32()))
        cols["timestamp"] = pa.array(ts)
        cols["frame_index"] = pa.array(np.arange(length, dtype=np.int64))
        cols["episode_index"] = pa.array(np.full(length, ep, dtype=np.int64))
        cols["index"] = pa.array(np.arange(total, total + length, dtype=np.int64))
        cols["task_index"] = pa.array(np.full(length, task_index[task], dtype=np.int64))
        for col in sorted(set(ann_cols.values())):
            if col == "task_index":
                continue
            value = task_index[VALID_TASK] if "validity" in col else task_index[task]
            cols[col] = pa.array(np.full(length, value, dtype=np.int64))
        done = np.zeros(length, dtype=bool)
        done[-1] = True
        cols["next.reward"] = pa.array(done.astype(np.float32))
        cols["next.done"] = pa.array(done)
        frames = {
            key: np.stack([_draw(height, width, bx, by, cam) for _ in range(length)])
            for cam, (_, key) in enumerate(sorted(videos.items()))
        }
        tasks = [task] + ([VALID_TASK] if VALID_TASK in task_index else [])
        writer.add_episode(pa.table(cols), tasks, videos=frames)
        total += length
    writer.finish()


def synthetic_from_cfg(cfg: Any, embodiment: Optional[Any] = None) -> Path:
    """Write/reuse the synthetic dataset the run config describes (data.synthetic, embodiment)."""
    s = cfg.data.synthetic
    return write_synthetic_dataset(
        s.out_dir,
        embodiment if embodiment is not None else cfg.embodiment,
        episodes=s.episodes,
        min_length=s.min_length,
        max_length=s.max_length,
        fps=s.fps,
        height=s.height,
        width=s.width,
        seed=s.seed,
    )
