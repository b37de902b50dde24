"""Sample transforms: video augmentation, state/action normalisation, rotations, GR00T packing."""

from gr00t_exp.data.transforms.normalize import StateActionNormalizer, key_stats, normalize, unnormalize
from gr00t_exp.data.transforms.pack import pack_sample
from gr00t_exp.data.transforms.video import VideoTransform

__all__ = [
    "StateActionNormalizer",
    "VideoTransform",
    "key_stats",
    "normalize",
    "pack_sample",
    "unnormalize",
]
