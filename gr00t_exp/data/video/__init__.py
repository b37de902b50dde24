"""Video decoding (torchcodec / PyAV) and the decoded-frame cache."""

from gr00t_exp.data.video.backends import (
    BACKENDS,
    FrameLookupError,
    VideoDecodeError,
    open_video,
    resolve_backend,
    timestamps_to_indices,
)
from gr00t_exp.data.video.cache import CachedVideo, FrameCache, cache_key

__all__ = [
    "BACKENDS",
    "CachedVideo",
    "FrameCache",
    "FrameLookupError",
    "VideoDecodeError",
    "cache_key",
    "open_video",
    "resolve_backend",
    "timestamps_to_indices",
]
