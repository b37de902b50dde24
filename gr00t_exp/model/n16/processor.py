"""GR00T N1.6 processor: raw observation (camera frames, instruction, state, action) -> model batch.

Reproduces the reference `Gr00tN1d6Processor` (eval mode) + collator + Eagle 3 processor
(refdata gr00t_n16/processor/README.md):

- language: lower-cased, every character that is neither a word character nor whitespace deleted
  (`formalize_language`);
- images, frame-major then view in the modality config's order: letterbox to a square (black,
  centred) -> shortest side 256 (OpenCV INTER_AREA) -> centre crop int(256 * 0.95) = 243 -> 256
  (INTER_AREA) -> Eagle `smart_resize` to multiples of 28 with Pillow bicubic (256 -> 252) ->
  (u8 - 127.5) / 127.5; 81 `<IMG_CONTEXT>` tokens per 252 x 252 view (H * W / 784);
- training (`sample(..., training=True)`, `train_transform`): the crop is a random 243 window
  (offsets 0..13), then an optional rotation (`random_rotation_angle`) and colour jitter
  (`color_jitter_params`), one draw per sample shared by all its views and frames;
- prompt: one user message, the text FIRST, then `<image k><img>` + tokens + `</img>` per image,
  no generation prompt; left padding with `<|endoftext|>`;
- state / action: `state_action.StateActionProcessor`, zero padded to max_state_dim and
  max_action_horizon x max_action_dim, `action_mask` on the real steps x dims;
- `embodiment_id` from the checkpoint's embodiment_id.json (else the N1.6 table of
  gr00t_exp/embodiment/embodiment_ids.yaml).

The tokenizer is N1.5's shipped Qwen3 BPE (`model/assets/processor`: identical vocabulary, merges
and added tokens). OpenCV (`opencv-python-headless`) is needed for the INTER_AREA resizes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gr00t_exp.data.transforms.video import VideoTransform
from gr00t_exp.model.n16.state_action import StateActionProcessor
from gr00t_exp.model.processor import ASSETS_DIR, PAD_TOKEN_ID, SYSTEM_PROMPT

PROCESSOR_CONFIG_NAME = "processor_config.json"
STATISTICS_NAME = "statistics.json"
EMBODIMENT_ID_NAME = "embodiment_id.json"
IMG_CONTEXT_TOKEN = "<IMG_CONTEXT>"
PIXELS_PER_TOKEN = 784  # (14 px patch * 2 unshuffle)^2
PATCH_FACTOR = 28
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 4096 * 28 * 28
_NOT_WORD_OR_SPACE = re.compile(r"[^\w\s]")
JITTER_KEYS = ("brightness", "contrast", "saturation", "hue")


def formalize_language(text: str) -> str:
    """Lower-case, delete every character that is not a word character or whitespace."""
    return _NOT_WORD_OR_SPACE.sub("", text.lower())


def chat_text(text: str, num_images: int) -> str:
    """The chat template's output for one user message (text first, then the images)."""
    images = "".join(f"<image-{k}>" for k in range(1, num_images + 1))
    return f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{text}{images}<|im_end|>\n"


# ---------------------------------------------------------------------------------------------- images
def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the GR00T N1.6 image pipeline resizes with OpenCV INTER_AREA: pip install opencv-python-headless"
        ) from e
    return cv2


def letterbox(img: np.ndarray) -> np.ndarray:
    """Pad to a square with black bars, centred ((max - h) // 2 on top, the rest at the bottom)."""
    h, w = img.shape[:2]
    side = max(h, w)
    if h == w:
        return img
    out = np.zeros((side, side, img.shape[2]), dtype=img.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = img
    return out


def resize_shortest_area(img: np.ndarray, edge: int) -> np.ndarray:
    """Resize so the shorter side is `edge` (OpenCV INTER_AREA); a no-op at `edge`."""
    h, w = img.shape[:2]
    if min(h, w) == edge:
        return img
    scale = edge / min(h, w)
    nh, nw = (edge, round(w * scale)) if h <= w else (round(h * scale), edge)
    cv2 = _cv2()
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size]


def eval_transform(img: np.ndarray, edge: int = 256, crop_fraction: float = 0.95) -> np.ndarray:
    """The deterministic (eval) view transform: letterbox -> 256 -> centre crop 243 -> 256."""
    x = resize_shortest_area(letterbox(np.ascontiguousarray(img)), edge)
    x = center_crop(x, int(min(x.shape[:2]) * crop_fraction))
    return np.ascontiguousarray(resize_shortest_area(np.ascontiguousarray(x), edge))


def jitter_settings(params: Mapping[str, Any] | None) -> dict[str, float] | None:
    """`color_jitter_params` ({brightness, contrast, saturation, hue}, missing = 0) -> the ranges,
    None when unset or all zero."""
    if params is None:
        return None
    if not isinstance(params, Mapping):
        raise TypeError(
            f"color_jitter_params must be a mapping of {', '.join(JITTER_KEYS)} (or null), got {params!r}"
        )
    unknown = sorted(set(params) - set(JITTER_KEYS))
    if unknown:
        raise ValueError(f"color_jitter_params: unknown keys {unknown}; allowed: {', '.join(JITTER_KEYS)}")
    ranges = {k: float(params.get(k) or 0.0) for k in JITTER_KEYS}
    return ranges if any(ranges.values()) else None


def rotation_setting(angle: Any) -> float | None:
    """`random_rotation_angle` (maximum degrees either way) -> the limit, None when unset or 0."""
    if angle is None:
        return None
    try:
        limit = abs(float(angle))
    except (TypeError, ValueError) as e:
        raise TypeError(f"random_rotation_angle must be a number of degrees (or null), got {angle!r}") from e
    return limit or None


def _colour_jitter(jitter: Mapping[str, float], edge: int) -> VideoTransform:
    # The project's colour jitter alone: a full-frame "crop" (offset 0) at the output size; a range
    # not given is 0 (not VideoTransform's N1.5 default).
    ranges = {k: float(jitter.get(k) or 0.0) for k in JITTER_KEYS}
    return VideoTransform(crop_scale=1.0, resize=edge, training=True, **ranges)


def rotate(img: np.ndarray, angle: float) -> np.ndarray:
    """Rotate by `angle` degrees (counter-clockwise) about the centre, bilinear, black corners."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(angle), 1.0)
    return cv2.warpAffine(
        img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )


def draw_train_params(
    size: int,
    crop: int,
    rotation: float | None = None,
    jitter: Mapping[str, float] | None = None,
    generator: torch.Generator | None = None,
    edge: int = 256,
) -> dict[str, Any]:
    """The random draws of one sample: crop offsets `top`, `left` in [0, size - crop], then (with a
    rotation limit) `angle` uniform in [-limit, limit], then (with jitter ranges) `jitter`, the
    colour jitter's factors (`VideoTransform.sample_jitter`). Without a generator: torch's global
    RNG (seeded per DataLoader worker)."""
    top, left = torch.randint(0, size - crop + 1, (2,), generator=generator).tolist()
    params: dict[str, Any] = {"top": int(top), "left": int(left)}
    if rotation:
        params["angle"] = float((2.0 * torch.rand(1, generator=generator) - 1.0) * rotation)
    if jitter:
        params["jitter"] = _colour_jitter(jitter, edge).sample_jitter(1, generator)
    return params


def train_transform(
    images: Sequence[np.ndarray],
    edge: int = 256,
    crop_fraction: float = 0.95,
    rotation: float | None = None,
    jitter: Mapping[str, float] | None = None,
    generator: torch.Generator | None = None,
    params: Mapping[str, Any] | None = None,
) -> list[np.ndarray]:
    """The training view transform of ONE sample (all its views and frames): letterbox -> 256 ->
    random crop 243 -> 256 -> optional rotation -> optional colour jitter, with one draw
    (`draw_train_params`, or `params`) applied to every image. At the centre offset and without
    rotation / jitter it equals `eval_transform`."""
    squares = [resize_shortest_area(letterbox(np.ascontiguousarray(im)), edge) for im in images]
    if not squares:
        return []
    sizes = {s.shape[:2] for s in squares}
    if len(sizes) != 1:  # pragma: no cover - letterbox + shortest-side resize always gives edge x edge
        raise ValueError(f"views of one sample differ in size after the letterbox: {sorted(sizes)}")
    size = min(squares[0].shape[:2])
    crop = int(size * crop_fraction)
    p = (
        dict(params)
        if params is not None
        else draw_train_params(size, crop, rotation, jitter, generator, edge)
    )
    top, left = int(p["top"]), int(p["left"])
    if not (0 <= top <= size - crop and 0 <= left <= size - crop):
        raise ValueError(f"crop offset ({top}, {left}) outside [0, {size - crop}]")
    out = [
        np.ascontiguousarray(
            resize_shortest_area(np.ascontiguousarray(s[top : top + crop, left : left + crop]), edge)
        )
        for s in squares
    ]
    if p.get("angle") is not None:
        out = [rotate(x, p["angle"]) for x in out]
    if p.get("jitter") is not None:
        if not jitter:
            raise ValueError(
                "train_transform: params carry a colour jitter draw but no jitter ranges were given"
            )
        zero = torch.zeros(1, dtype=torch.int64)
        draws = {"top": zero, "left": zero, **p["jitter"]}
        out = list(_colour_jitter(jitter, edge).batch(np.stack(out)[None], params=draws)[0])
    return out


def smart_resize(height: int, width: int) -> tuple[int, int]:
    """Eagle's target size: multiples of 28, total pixels within [MIN_PIXELS, MAX_PIXELS]."""
    h = max(PATCH_FACTOR, round(height / PATCH_FACTOR) * PATCH_FACTOR)
    w = max(PATCH_FACTOR, round(width / PATCH_FACTOR) * PATCH_FACTOR)
    if h * w > MAX_PIXELS:
        beta = (height * width / MAX_PIXELS) ** 0.5
        h = max(PATCH_FACTOR, int(height / beta // PATCH_FACTOR) * PATCH_FACTOR)
        w = max(PATCH_FACTOR, int(width / beta // PATCH_FACTOR) * PATCH_FACTOR)
    elif h * w < MIN_PIXELS:
        beta = (MIN_PIXELS / (height * width)) ** 0.5
        h = -(-int(height * beta) // PATCH_FACTOR) * PATCH_FACTOR
        w = -(-int(width * beta) // PATCH_FACTOR) * PATCH_FACTOR
    return h, w


def eagle_resize(img: np.ndarray) -> np.ndarray:
    """Pillow bicubic resize to `smart_resize` (256 x 256 -> 252 x 252)."""
    from PIL import Image

    h, w = smart_resize(*img.shape[:2])
    if (h, w) == img.shape[:2]:
        return img
    return np.asarray(Image.fromarray(img).convert("RGB").resize((w, h), Image.BICUBIC))


def to_pixel_values(img_u8: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) = (u8 - 127.5) / 127.5 (the fused rescale + normalise)."""
    x = torch.from_numpy(np.array(img_u8, dtype=np.uint8)).permute(2, 0, 1)[None].to(torch.float32)
    return x.sub_(127.5).div_(127.5)


# ---------------------------------------------------------------------------------------------- processor
@dataclass
class N16Sample:
    """One processed observation (before collation)."""

    text: str
    images: list[np.ndarray]  # after eval_transform (or train_transform), uint8 (256, 256, 3)
    embodiment_id: int
    state: np.ndarray | None = None  # (T_s, max_state_dim) float32
    action: np.ndarray | None = None  # (max_action_horizon, max_action_dim) float32
    action_mask: np.ndarray | None = None  # same shape, float64


class Gr00tN16Processor:
    """Processor of one N1.6 checkpoint: its processor_config.json, statistics.json, embodiment_id.json."""

    def __init__(
        self,
        tokenizer: Any,
        processor_kwargs: Mapping[str, Any],
        statistics: Mapping[str, Any],
        embodiment_ids: Mapping[str, int] | None = None,
        source: str = "processor_config.json",
    ) -> None:
        self.tokenizer = tokenizer
        self._backend = tokenizer.backend_tokenizer
        self.kwargs = dict(processor_kwargs)
        self.source = source
        self.modality_configs = self.kwargs.get("modality_configs", {})
        self.state_action = StateActionProcessor(self.modality_configs, statistics, self.kwargs)
        self.embodiment_ids = dict(embodiment_ids) if embodiment_ids is not None else None
        self.max_state_dim = int(self.kwargs.get("max_state_dim", 128))
        self.max_action_dim = int(self.kwargs.get("max_action_dim", 128))
        self.max_action_horizon = int(self.kwargs.get("max_action_horizon", 50))
        self.edge = int(self.kwargs.get("shortest_image_edge") or 256)
        self.crop_fraction = float(self.kwargs.get("crop_fraction") or 0.95)
        self.formalize = bool(self.kwargs.get("formalize_language", True))
        self.rotation = rotation_setting(self.kwargs.get("random_rotation_angle"))
        self.jitter = jitter_settings(self.kwargs.get("color_jitter_params"))
        vocab = tokenizer.get_vocab()
        self.image_token_id = vocab[IMG_CONTEXT_TOKEN]
        if tokenizer.pad_token_id != PAD_TOKEN_ID:
            raise ValueError(f"tokenizer pad token id is {tokenizer.pad_token_id}, expected {PAD_TOKEN_ID}")

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: str | Path, tokenizer_dir: str | Path | None = None) -> Gr00tN16Processor:
        """From a checkpoint directory holding processor_config.json, statistics.json and
        embodiment_id.json; the tokenizer is the shipped Qwen3 one unless `tokenizer_dir` is given."""
        from transformers import Qwen2TokenizerFast

        folder = Path(path)
        missing = [n for n in (PROCESSOR_CONFIG_NAME, STATISTICS_NAME) if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{folder}: no {', '.join(missing)}. A GR00T N1.6 checkpoint carries processor_config.json "
                "(modality configs, image settings) and statistics.json (normalisation statistics) beside "
                "config.json; copy them from the checkpoint the weights came from"
            )
        proc = json.loads((folder / PROCESSOR_CONFIG_NAME).read_text())
        kwargs = proc.get("processor_kwargs", proc)
        stats = json.loads((folder / STATISTICS_NAME).read_text())
        ids_path = folder / EMBODIMENT_ID_NAME
        ids = json.loads(ids_path.read_text()) if ids_path.is_file() else None
        tok = Qwen2TokenizerFast.from_pretrained(str(tokenizer_dir or ASSETS_DIR), local_files_only=True)
        return cls(tok, kwargs, stats, ids, source=str(folder))

    # ----------------------------------------------------------------------------------- pieces
    def embodiment_id(self, tag: str) -> int:
        if self.embodiment_ids is not None:
            if tag not in self.embodiment_ids:
                known = ", ".join(f"{k} ({v})" for k, v in self.embodiment_ids.items())
                raise KeyError(
                    f"{self.source}/{EMBODIMENT_ID_NAME}: no projector index for embodiment tag {tag!r}; "
                    f"known: {known}. Fix: use one of these tags (a robot the base model has not seen uses "
                    "new_embodiment) or add the tag to embodiment_id.json"
                )
            return int(self.embodiment_ids[tag])
        from gr00t_exp.embodiment.ids import projector_index

        return projector_index("gr00t_n16", tag)

    def sample(
        self,
        embodiment: str,
        images: Mapping[str, Sequence[np.ndarray] | np.ndarray],
        text: str,
        state: Mapping[str, np.ndarray] | None = None,
        action: Mapping[str, np.ndarray] | None = None,
        *,
        training: bool = False,
        generator: torch.Generator | None = None,
    ) -> N16Sample:
        """One observation: `images[view]` (T, H, W, 3) uint8 (or a list of frames), raw `state`
        {group: (T_s, D)}, optional absolute `action` {group: (T_a, D)}. `training`: the random
        crop / rotation / colour jitter of `train_transform` (one draw from `generator`, or torch's
        global RNG, for all views and frames) instead of the deterministic eval transform."""
        mods = self.modality_configs.get(embodiment)
        if mods is None:
            raise KeyError(
                f"{self.source}/{PROCESSOR_CONFIG_NAME}: no modality config for embodiment {embodiment!r} "
                f"(have {sorted(self.modality_configs)})"
            )
        views = mods["video"]["modality_keys"]
        frames = [
            np.asarray(images[v]) if not isinstance(images[v], np.ndarray) else images[v] for v in views
        ]
        frames = [f if f.ndim == 4 else f[None] for f in frames]
        ordered = [frames[j][t] for t in range(frames[0].shape[0]) for j in range(len(views))]
        if training:
            imgs = train_transform(
                ordered, self.edge, self.crop_fraction, self.rotation, self.jitter, generator=generator
            )
        else:
            imgs = [eval_transform(f, self.edge, self.crop_fraction) for f in ordered]
        out = N16Sample(
            text=formalize_language(text) if self.formalize else text,
            images=imgs,
            embodiment_id=self.embodiment_id(embodiment),
        )
        if state is not None:
            s = self.state_action.state(embodiment, state)
            out.state = _pad(s, (s.shape[0], self.max_state_dim), np.float32)
        if action is not None:
            a = self.state_action.action(embodiment, action, state or {})
            out.action = _pad(a, (self.max_action_horizon, self.max_action_dim), np.float32)
            mask = np.zeros((self.max_action_horizon, self.max_action_dim), dtype=np.float64)
            mask[: a.shape[0], : a.shape[1]] = 1.0
            out.action_mask = mask
        return out

    def text_ids(self, text: str, image_sizes: Sequence[tuple[int, int]]) -> list[int]:
        """Token ids of one sample: chat text with each `<image-k>` expanded (H * W / 784 tokens)."""
        s = chat_text(text, len(image_sizes))
        for k, (h, w) in enumerate(image_sizes, start=1):
            block = f"<image {k}><img>{IMG_CONTEXT_TOKEN * (h * w // PIXELS_PER_TOKEN)}</img>"
            s = s.replace(f"<image-{k}>", block, 1)
        return self._backend.encode(s, add_special_tokens=False).ids

    def collate(self, samples: Sequence[N16Sample]) -> dict[str, Any]:
        """Batch: eagle_input_ids / eagle_attention_mask (left padded), eagle_pixel_values (list of
        (1, 3, H, W), samples' images in order), image_sizes, state, action, action_mask, embodiment_id."""
        pixel_values, sizes, rows = [], [], []
        for s in samples:
            resized = [eagle_resize(img) for img in s.images]
            pixel_values += [to_pixel_values(r) for r in resized]
            hw = [tuple(r.shape[:2]) for r in resized]
            sizes += hw
            rows.append(self.text_ids(s.text, hw))
        length = max(len(r) for r in rows)
        ids = np.full((len(rows), length), PAD_TOKEN_ID, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, length - len(r) :] = r
            mask[i, length - len(r) :] = 1
        batch: dict[str, Any] = {
            "eagle_input_ids": torch.from_numpy(ids),
            "eagle_attention_mask": torch.from_numpy(mask),
            "eagle_pixel_values": pixel_values,
            "image_sizes": torch.tensor(sizes, dtype=torch.int64).reshape(-1, 2),
            "embodiment_id": torch.tensor([s.embodiment_id for s in samples], dtype=torch.int64),
        }
        for key in ("state", "action", "action_mask"):
            vals = [getattr(s, key) for s in samples]
            if all(v is not None for v in vals):
                batch[key] = torch.from_numpy(np.stack(vals))
        return batch

    def decode_action(
        self, embodiment: str, action_pred: np.ndarray | torch.Tensor, state: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Model output (H, A) of one sample -> absolute actions per group (the real steps only)."""
        a = (
            action_pred.detach().float().cpu().numpy()
            if isinstance(action_pred, torch.Tensor)
            else action_pred
        )
        steps = len(self.modality_configs[embodiment]["action"]["delta_indices"])
        return self.state_action.decode_action(embodiment, np.asarray(a)[:steps], state)


def _pad(x: np.ndarray, shape: tuple[int, int], dtype) -> np.ndarray:
    if x.shape[0] > shape[0] or x.shape[1] > shape[1]:
        raise ValueError(f"processed array {x.shape} exceeds the padded shape {shape} (max_state/action_dim)")
    out = np.zeros(shape, dtype=dtype)
    out[: x.shape[0], : x.shape[1]] = x
    return out
