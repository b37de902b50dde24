"""Decoded-frame cache: each (video, resolution) decoded once, sequentially, into a uint8 .npy.

Layout: `<cache_dir>/<key>/frames.npy` (N, H, W, 3) uint8, read through np.memmap, and
`<key>/pts.npy` (N,) float64. The key hashes the absolute source path, its size and mtime and
the stored resolution, so an edited/replaced video gets a new entry (stale ones are simply
unused; `prune` removes them). An entry is written into a private temporary directory and
renamed into place in one step, so concurrent workers or runs never see a partial entry: the
first rename wins, the others discard their copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gr00t_exp.data.video.backends import open_video

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class CachedVideo:
    frames: np.ndarray  # np.memmap (N, H, W, 3) uint8, read-only
    pts: np.ndarray  # (N,) float64 seconds
    source: Path


def cache_key(video_path: str | Path, height: int | None, width: int | None) -> str:
    p = Path(video_path).resolve()
    st = p.stat()
    raw = json.dumps([FORMAT_VERSION, str(p), st.st_size, st.st_mtime_ns, height, width])
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


class FrameCache:
    def __init__(
        self,
        cache_dir: str | Path,
        height: int | None = None,
        width: int | None = None,
        backend: str = "auto",
        threads: int = 1,
    ):
        if (height is None) != (width is None):
            raise ValueError("data.cache.height and data.cache.width must be set together (or both null)")
        self.dir = Path(cache_dir)
        self.height, self.width = height, width
        self.backend = backend
        self.threads = threads
        self._open: dict[str, CachedVideo] = {}

    def entry_dir(self, video_path: str | Path) -> Path:
        return self.dir / cache_key(video_path, self.height, self.width)

    def is_cached(self, video_path: str | Path) -> bool:
        return (self.entry_dir(video_path) / "frames.npy").is_file()

    def get(self, video_path: str | Path) -> CachedVideo:
        """The cached frames of a video, building the entry first if needed."""
        key = str(video_path)
        hit = self._open.get(key)
        if hit is not None:
            return hit
        d = self.entry_dir(video_path)
        if not (d / "frames.npy").is_file():
            self.build(video_path)
        cv = CachedVideo(
            frames=np.load(d / "frames.npy", mmap_mode="r"),
            pts=np.load(d / "pts.npy"),
            source=Path(video_path),
        )
        self._open[key] = cv
        return cv

    def build(self, video_path: str | Path) -> Path:
        """Decode a video sequentially into the cache (no-op when present). Returns the entry dir."""
        d = self.entry_dir(video_path)
        if (d / "frames.npy").is_file():
            return d
        self.dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        reader = open_video(video_path, self.backend, self.threads)
        try:
            pts = reader.pts
            frames = reader.decode_all(self.height, self.width)
        finally:
            reader.close()
        tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.", dir=self.dir))
        try:
            np.save(tmp / "pts.npy", pts)
            np.save(tmp / "frames.npy", frames)
            (tmp / "source.json").write_text(
                json.dumps(
                    {
                        "source": str(Path(video_path).resolve()),
                        "height": self.height,
                        "width": self.width,
                        "shape": list(frames.shape),
                    }
                )
            )
            try:
                os.rename(tmp, d)  # atomic; fails if another process got there first
            except OSError:
                if not (d / "frames.npy").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        dt = time.perf_counter() - t0
        log.debug(
            "frame cache: %s -> %s (%d frames, %.0f frames/s)", video_path, d, len(frames), len(frames) / dt
        )
        return d

    def prune(self) -> int:
        """Remove entries whose source video changed or vanished. Returns how many."""
        n = 0
        for meta in self.dir.glob("*/source.json"):
            info = json.loads(meta.read_text())
            src = Path(info["source"])
            if not src.is_file() or cache_key(src, info.get("height"), info.get("width")) != meta.parent.name:
                shutil.rmtree(meta.parent, ignore_errors=True)
                n += 1
        return n

    def __getstate__(self):
        # memmaps are reopened in each DataLoader worker rather than pickled
        s = self.__dict__.copy()
        s["_open"] = {}
        return s
