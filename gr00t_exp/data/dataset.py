"""Sampling datasets: `Gr00tDataset` (one LeRobot dataset) and `MixtureDataset` (weighted mix).

Every step of every episode is a sample (N1.5). A sample is upstream's GR00TTransform output
(docs/interfaces.md): video uint8 (T, V, 224, 224, 3), state/state_mask (1, 64), action/action_mask
(16, 32), embodiment_id, language. Frames are chosen by the parquet `timestamp` column, matched
to the video's frame pts within `data.timestamp_tolerance_s`; a miss names episode, key and time.

Timestamps vs pts: some datasets (robot_sim.PickNPlace) log row i at (i + 1) / fps while the
video's frame i plays at i / fps. With `align_timestamps` (default) an episode's timestamps are
shifted so its first row maps to the video's first frame (logged once per dataset); upstream's
nearest-frame decoders instead return frame i + 1 for row i and repeat the last frame.

Speed: frames come from the decoded-frame cache (uint8 memmap) when enabled, else from the
video decoder; `__getitems__` (used by the DataLoader's batched fetch) fetches a batch's frames
with one decoder call per (episode, view), sorted (one forward decode per key frame interval, not
one seek per sample), and runs the video transform once on the whole batch. With `defer_video_augment` (data.augment_on=gpu, training only) it only
draws the augmentation parameters; the frames stay raw and are augmented batched on the device
(transforms/video_batch.py).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gr00t_exp.data.errors import DatasetError, error
from gr00t_exp.data.meta import DatasetMeta
from gr00t_exp.data.sampling import clamp_indices, episode_offsets, gather_padded, locate, step_indices
from gr00t_exp.data.transforms import StateActionNormalizer, VideoTransform, pack_sample
from gr00t_exp.data.video import FrameCache, FrameLookupError, open_video, timestamps_to_indices
from gr00t_exp.embodiment import EmbodimentLayout, KeySpec

log = logging.getLogger(__name__)


@dataclass
class _Episode:
    index: int
    length: int
    timestamps: np.ndarray
    state: dict[str, np.ndarray]  # short key -> (L, D) float64
    action: dict[str, np.ndarray]
    language: np.ndarray | None  # (L,) task indices, or None -> episode task


class Gr00tDataset(Dataset):
    """One GR00T-flavoured LeRobot dataset as a map-style dataset of transformed samples.

    meta: from `load_meta`; embodiment: EmbodimentConfig (or its EmbodimentLayout over `meta`); stats: stats.json layout or the
    per-key metadata.json layout; episodes: episode indices to use (default all);
    frame_cache: a FrameCache, or None to decode from the videos; transform=False returns raw
    (un-normalised, un-augmented, unpadded) samples.
    """

    def __init__(
        self,
        meta: DatasetMeta,
        embodiment: Any,
        stats: Mapping | None = None,
        *,
        episodes: Sequence[int] | None = None,
        training: bool = True,
        video_backend: str = "auto",
        frame_cache: FrameCache | None = None,
        timestamp_tolerance_s: float = 1e-4,
        align_timestamps: bool = True,
        transform: bool = True,
        max_open_videos: int = 16,
    ):
        self.meta = meta
        self.embodiment = embodiment
        self.training = training
        self.video_backend = video_backend
        self.frame_cache = frame_cache
        self.tolerance = float(timestamp_tolerance_s)
        self.align = bool(align_timestamps)
        self.do_transform = transform
        self.max_open_videos = max_open_videos
        known = {e.index: e for e in meta.episodes}
        chosen = list(episodes) if episodes is not None else [e.index for e in meta.episodes]
        missing = [e for e in chosen if e not in known]
        if missing:
            raise KeyError(f"{meta.root}: episodes {missing[:5]} are not in meta/episodes.jsonl")
        self.episode_indices = chosen
        self.lengths = [known[e].length for e in chosen]
        self.offsets = episode_offsets(self.lengths)
        # Keys missing from the dataset's modality fail here, naming the key and modality.json.
        self.layout = EmbodimentLayout.from_meta(embodiment, meta)
        lay = self.layout
        self.video_keys = lay.keys("video")
        self.state_keys = lay.keys("state")
        self.action_keys = lay.keys("action")
        self.obs_deltas = np.asarray(lay.observation_indices, np.int64)
        self.action_deltas = np.asarray(lay.action_indices, np.int64)
        self.language_key = lay.language_key
        self.video_transform = VideoTransform.from_config(lay.video_transform, training=training)
        # Training with data.augment_on=gpu (set by the DataModule): samples keep their raw frames
        # plus the augmentation draws, applied batched on the device (transforms/video_batch.py).
        self.defer_video_augment = False
        self.normalizer = StateActionNormalizer(lay, stats) if (transform and stats is not None) else None
        if transform and stats is None:
            raise ValueError("Gr00tDataset(transform=True) needs statistics (load_or_compute_stats(meta))")
        self._episodes: OrderedDict[int, _Episode] = OrderedDict()
        self._frame_maps: dict[tuple[int, str], np.ndarray] = {}
        self._readers: OrderedDict[str, Any] = OrderedDict()
        self._aligned_logged = False
        self._pid = os.getpid()

    # ------------------------------------------------------------------ episodes / frames
    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self):
        # DataLoader workers re-open files lazily; keep pickles small
        s = self.__dict__.copy()
        s["_episodes"], s["_frame_maps"], s["_readers"] = OrderedDict(), {}, OrderedDict()
        return s

    def _episode(self, ep: int) -> _Episode:
        e = self._episodes.get(ep)
        if e is not None:
            return e
        lay = self.layout
        cols = set(lay.columns("state")) | set(lay.columns("action"))
        lang_col = lay.language_column
        available = set(self.meta.columns) if self.meta.columns else None
        wanted = sorted(cols | {"timestamp"} | ({lang_col} if lang_col else set()))
        if available is not None:
            wanted = [c for c in wanted if c in available or c in cols]
        data = self.meta.read_episode(ep, wanted)
        n = len(next(iter(data.values())))
        ts = data.get("timestamp")
        ts = np.asarray(ts, np.float64) if ts is not None else np.arange(n) / self.meta.fps

        def sl(spec: KeySpec) -> np.ndarray:
            if spec.column not in data:
                raise KeyError(
                    f"{self.meta.parquet_path(ep)}: column {spec.column!r} (for {spec.name}) is missing"
                )
            arr = np.asarray(data[spec.column], np.float64)
            return (arr[:, None] if arr.ndim == 1 else arr)[:, spec.column_slice]

        lang = data.get(lang_col) if lang_col else None
        e = _Episode(
            index=ep,
            length=n,
            timestamps=ts,
            state={s.key: sl(s) for s in lay.state},
            action={s.key: sl(s) for s in lay.action},
            language=np.asarray(lang) if lang is not None else None,
        )
        self._episodes[ep] = e
        if len(self._episodes) > 256:
            self._episodes.popitem(last=False)
        return e

    def _video_source(self, ep: int, key: str):
        path = self.meta.video_path(ep, self.meta.modality.video[key].original_key)
        if self.frame_cache is not None:
            cv = self.frame_cache.get(path)
            return path, cv.pts, (lambda idx, cv=cv: cv.frames[idx])
        if self._pid != os.getpid():
            # forked DataLoader worker: decoder state must not be shared with the parent
            self._readers = OrderedDict()
            self._pid = os.getpid()
        r = self._readers.get(str(path))
        if r is None:
            r = open_video(path, self.video_backend)
            self._readers[str(path)] = r
            if len(self._readers) > self.max_open_videos:
                self._readers.popitem(last=False)[1].close()
        return path, r.pts, r.frames_at

    def frame_map(self, ep: int, key: str) -> np.ndarray:
        """Row -> frame index of episode `ep`'s video `key` (by timestamp, within tolerance)."""
        m = self._frame_maps.get((ep, key))
        if m is not None:
            return m
        e = self._episode(ep)
        path, pts, _ = self._video_source(ep, key)
        ts = e.timestamps
        first = 0
        # LeRobot v3.0: episodes share one mp4; row timestamps restart at 0 and play at from_s + t.
        span = self.meta.video_span(ep, self.meta.modality.video[key].original_key)
        if span is not None:
            ts = ts + span[0]
            first = min(int(np.searchsorted(pts, span[0] - self.tolerance)), max(len(pts) - 1, 0))
        offset = ts[0] - pts[first] if len(pts) else 0.0
        if self.align and abs(offset) > self.tolerance:
            ts = ts - offset
            if not self._aligned_logged:
                log.info(
                    "%s: parquet timestamps start %.4fs after the video's first frame; aligning them "
                    "(data.align_timestamps=false to disable)",
                    self.meta.root.name,
                    offset,
                )
                self._aligned_logged = True
        what = f"episode {ep} video.{key} ({self.meta.rel(path)}): "
        m = timestamps_to_indices(pts, ts, self.tolerance, what=what)
        self._frame_maps[(ep, key)] = m
        return m

    def _frames(self, ep: int, key: str, rows: np.ndarray) -> np.ndarray:
        """Frames of `rows` of episode `ep`'s video `key`."""
        return self._fetch(ep, key, rows)[1]

    def _fetch(
        self, ep: int, key: str, rows: np.ndarray, unique: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(frame indices, frames) of `rows`; `unique`: the sorted distinct frames only. A file that
        cannot be opened or decoded mid-run is named with its episode."""
        try:
            _, _, fetch = self._video_source(ep, key)
            idx = self.frame_map(ep, key)[rows]
            if unique:
                idx = np.unique(idx)
            return idx, np.asarray(fetch(idx))
        except (FrameLookupError, DatasetError):
            raise
        except Exception as e:  # decoder errors differ by backend (PyAV, torchcodec, OSError)
            path = self.meta.video_path(ep, self.meta.modality.video[key].original_key)
            raise DatasetError(
                error(
                    "video.decode",
                    self.meta.rel(path),
                    f"episode {ep} video.{key}",
                    f"cannot decode frames ({type(e).__name__}: {e})",
                    f"re-encode or restore the file (python run.py mode=validate tools.dataset={self.meta.root} "
                    "checks every video)",
                )
            ) from e

    def _prefetch(
        self, locs: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
        """Every frame a batch needs, one decoder call per (episode, view) with sorted unique indices.

        Decoding from video, the cost of a frame is the decode from its key frame forward; a batch's
        frames of one video, sorted, are reached in one forward pass per key frame interval instead of
        one seek and decode per sample. Returns (episode, key) -> (sorted frame indices, frames).
        """
        need: dict[int, list[np.ndarray]] = {}
        for ep, base in locs:
            need.setdefault(ep, []).append(
                clamp_indices(step_indices(base, self.obs_deltas), self._episode(ep).length)
            )
        return {
            (ep, key): self._fetch(ep, key, np.concatenate(rows), unique=True)
            for ep, rows in need.items()
            for key in self.video_keys
        }

    # ------------------------------------------------------------------ samples
    def locate(self, index: int) -> tuple[int, int]:
        """Flat sample index -> (episode index, base row)."""
        pos, base = locate(index, self.offsets)
        return self.episode_indices[pos], base

    def raw_sample(
        self,
        ep: int,
        base: int,
        prefetched: Mapping[tuple[int, str], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> dict:
        """Un-normalised sample: video (T, V, H, W, 3) uint8, state.* / action.* (T, D), language.

        prefetched: `_prefetch`'s frames of a batch holding this sample (else decoded here)."""
        e = self._episode(ep)
        obs = step_indices(base, self.obs_deltas)
        rows = clamp_indices(obs, e.length)
        views = []
        for key in self.video_keys:
            if prefetched is None:
                views.append(self._frames(ep, key, rows))
            else:
                idx, frames = prefetched[(ep, key)]
                views.append(frames[np.searchsorted(idx, self.frame_map(ep, key)[rows])])
        shapes = {v.shape for v in views}
        if len(shapes) > 1:
            raise ValueError(
                f"{self.meta.root}: episode {ep} views {self.video_keys} have different sizes {shapes}; "
                "set data.cache.height/width to store them at one size"
            )
        act = step_indices(base, self.action_deltas)
        out: dict[str, Any] = {"video": np.stack(views, axis=1)}
        for s in self.layout.state:
            out[s.name] = gather_padded(e.state[s.key], obs, s.absolute)
        for s in self.layout.action:
            out[s.name] = gather_padded(e.action[s.key], act, s.absolute)
        out["language"] = self._language(e, int(clamp_indices(obs, e.length)[0]))
        return out

    def _language(self, e: _Episode, row: int) -> str:
        if e.language is not None:
            idx = int(e.language[row])
            if idx in self.meta.tasks:
                return self.meta.tasks[idx]
        info = next((x for x in self.meta.episodes if x.index == e.index), None)
        return info.tasks[0] if info is not None and info.tasks else ""

    def finish(self, raw: dict, video: np.ndarray) -> dict:
        """Normalise + pack one raw sample whose video is already transformed."""
        assert self.normalizer is not None
        lay = self.layout
        state_keys, action_keys = lay.prefixed_keys("state"), lay.prefixed_keys("action")
        state = self.normalizer.normalize_state({k: raw[k] for k in state_keys})
        action = self.normalizer.normalize_action({k: raw[k] for k in action_keys})
        return pack_sample(
            video,
            state,
            action,
            raw["language"],
            state_keys,
            action_keys,
            lay.embodiment_tag,
            lay.max_state_dim,
            lay.max_action_dim,
            action_horizon=lay.action_horizon,
        )

    def raw_samples(self, locs: Sequence[tuple[int, int]]) -> list[dict]:
        """`raw_sample` of each (episode, base row), the batch's frames fetched together."""
        frames = self._prefetch(locs) if len(locs) > 1 else None
        return [self.raw_sample(ep, base, frames) for ep, base in locs]

    def samples_at(
        self, locs: Sequence[tuple[int, int]], generator: torch.Generator | None = None
    ) -> list[dict]:
        raws = self.raw_samples(locs)
        if not self.do_transform:
            return raws
        return self.transform_samples(raws, generator)

    def transform_samples(self, raws: list[dict], generator: torch.Generator | None = None) -> list[dict]:
        """Raw samples -> model samples: video augmentation (or, deferred, its draws) + `finish`."""
        if self.defer_video_augment and self.training:
            return self._deferred_samples(raws, generator)
        videos = self.video_transform.batch(np.stack([r["video"] for r in raws]), generator)
        return [self.finish(r, v) for r, v in zip(raws, videos, strict=True)]

    def _deferred_samples(self, raws: list[dict], generator: torch.Generator | None) -> list[dict]:
        """Raw frames + each sample's augmentation draws: the same `sample_params` call (same
        generator, same order) as the CPU path, so both paths augment a seed identically."""
        vt = self.video_transform
        h, w = raws[0]["video"].shape[-3:-1]
        if any(r["video"].shape[-3:-1] != (h, w) for r in raws):
            # One crop size per batch: the device side crops with one gather (video_batch.py).
            raise ValueError(
                f"{self.meta.root}: frames of one batch have different sizes; set data.cache.height/width "
                "to store them at one size, or data.augment_on=cpu"
            )
        draws = {k: v.numpy() for k, v in vt.sample_params(len(raws), h, w, generator).items()}
        ch, cw = vt.crop_size(h, w)
        out = []
        for i, r in enumerate(raws):
            s = self.finish(r, r["video"])
            s["augment"] = {
                "crop_h": ch,
                "crop_w": cw,
                "size": vt.resize,
                **{k: v[i] for k, v in draws.items()},
            }
            out.append(s)
        return out

    def __getitem__(self, index: int) -> dict:
        return self.samples_at([self.locate(int(index))])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        return self.samples_at([self.locate(int(i)) for i in indices])

    def warm_cache(self) -> int:
        """Build the frame cache of every (episode, view) up front. Returns the number of videos."""
        if self.frame_cache is None:
            return 0
        n = 0
        for ep in self.episode_indices:
            for key in self.video_keys:
                self.frame_cache.build(self.meta.video_path(ep, self.meta.modality.video[key].original_key))
                n += 1
        return n


class MixtureDataset(Dataset):
    """Weighted mixture of Gr00tDatasets, as upstream's LeRobotMixtureDataset.

    Each index draws, from a RNG seeded by (seed, epoch, index): a dataset with probability ∝
    weight (× its number of frames when balance_dataset_weights), a trajectory ∝ its length when
    balance_trajectory_weights (else uniform), and a uniform base row. The length is the max over
    primary datasets (weight == the largest weight) of len / probability, so one epoch visits each
    primary dataset's frames once in expectation.
    """

    def __init__(
        self,
        datasets: Sequence[Gr00tDataset],
        weights: Sequence[float],
        *,
        balance_dataset_weights: bool = True,
        balance_trajectory_weights: bool = True,
        seed: int = 42,
    ):
        if len(datasets) != len(weights) or not datasets:
            raise ValueError("MixtureDataset needs one weight per dataset (data.sources[*].weight)")
        w = np.asarray(weights, np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"data.sources weights must be >= 0 with a positive sum, got {list(weights)}")
        self.datasets = list(datasets)
        self.seed = int(seed)
        self.epoch = 0
        sizes = np.asarray([len(d) for d in datasets], np.float64)
        p = w * sizes if balance_dataset_weights else w.copy()
        self.probs = p / p.sum()
        self.balance_traj = balance_trajectory_weights
        primary = w == w.max()
        self._len = int(
            np.ceil(max(sizes[i] / self.probs[i] for i in np.flatnonzero(primary) if self.probs[i] > 0))
        )
        self.traj_probs = [np.asarray(d.lengths, np.float64) / sum(d.lengths) for d in datasets]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._len

    def draw(self, index: int) -> tuple[int, int, int]:
        """index -> (dataset position, episode index, base row); deterministic in (seed, epoch, index)."""
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        d = int(rng.choice(len(self.datasets), p=self.probs))
        ds = self.datasets[d]
        if self.balance_traj:
            t = int(rng.choice(len(ds.lengths), p=self.traj_probs[d]))
        else:
            t = int(rng.integers(len(ds.lengths)))
        base = int(rng.integers(ds.lengths[t]))
        return d, ds.episode_indices[t], base

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        draws = [self.draw(int(i)) for i in indices]
        out: list[dict | None] = [None] * len(draws)
        for d in sorted({x[0] for x in draws}):
            pos = [i for i, x in enumerate(draws) if x[0] == d]
            for i, s in zip(pos, self.datasets[d].samples_at([draws[i][1:] for i in pos]), strict=True):
                out[i] = s
        return out  # type: ignore[return-value]
