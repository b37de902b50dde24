"""Sample transforms: video augmentation, state/action normalisation, rotations, GR00T packing."""

from gr00t_exp.data.transforms.normalize import StateActionNormalizer, key_stats, normalize, unnormalize
from gr00t_exp.data.transforms.pack import EMBODIMENT_IDS, embodiment_id, pack_sample
from gr00t_exp.data.transforms.video import VideoTransform

__all__ = [
    "EMBODIMENT_IDS",
    "StateActionNormalizer",
    "VideoTransform",
    "embodiment_id",
    "key_stats",
    "normalize",
    "pack_sample",
    "unnormalize",
]
