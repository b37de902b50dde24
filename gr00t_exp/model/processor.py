"""GR00T N1.5 input processor: images + instruction -> `eagle_*` model inputs.

Reproduces the reference Eagle-2.5 processor as GR00T N1.5 uses it (tests/model/test_processor.py
checks it against that processor's recorded outputs), on native pieces: the Qwen3 BPE tokenizer
built by transformers' `Qwen2TokenizerFast` from the shipped `vocab.json` / `merges.txt` (no remote
code, no network) and torch for the image arithmetic.

Per sample the prompt is the chat template with one user message (images first, then the text):

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    <image 1><img><IMG_CONTEXT>*256*tiles</img> ... <image N><img>...</img>{text}
    <|im_end|>\\n<|im_start|>assistant\\n

Speed: special tokens split the text before BPE runs, so every piece between two special tokens is
tokenized independently of its neighbours. The header, each `<image k>` tag and the trailer are
therefore tokenized once and cached; only the instruction text is tokenized per call (and cached by
value, since instructions repeat across a dataset). The equivalence with tokenizing the whole
rendered string is checked in tests/model/test_processor.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F

ASSETS_DIR = Path(__file__).resolve().parent / "assets" / "processor"

PAD_TOKEN_ID = 151643  # <|endoftext|>
IMG_CONTEXT_TOKEN = "<IMG_CONTEXT>"
IMG_START_TOKEN = "<img>"
IMG_END_TOKEN = "</img>"
# GR00TTransform's text when an observation carries no language (language dropout uses it too).
DEFAULT_INSTRUCTION = "Perform the default behavior."
SYSTEM_PROMPT = "You are a helpful assistant."

REQUIRED_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "preprocessor_config.json")

ImageInput = Union[Sequence[np.ndarray], np.ndarray]


def render_prompt(num_images: int, text: str) -> str:
    """The chat-template output (with the generation prompt) for one sample, before image expansion."""
    images = "".join(f"<image-{k}>" for k in range(1, num_images + 1))
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{images}{text}"
        "<|im_end|>\n<|im_start|>assistant\n"
    )


def candidate_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """(cols, rows) grids with min_tiles <= cols*rows <= max_tiles, in the reference's visiting order.

    The reference builds a Python set of the grids and sorts it by tile count (a stable sort), so
    grids with equal tile counts keep CPython's set iteration order; with a tie in score the first
    visited grid wins, so the order is reproduced here the same way.
    """
    grids = {
        (i, j)
        for n in range(min_tiles, max_tiles + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_tiles <= i * j <= max_tiles
    }
    return sorted(grids, key=lambda g: g[0] * g[1])


def choose_grid(width: int, height: int, tile: int, grids: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """Pick the tiling grid: max of min(area ratio, 0.6) * aspect similarity; ties keep the first."""
    aspect = width / height
    best, best_score = (1, 1), -1.0
    for cols, rows in grids:
        ratio = cols / rows
        area_score = min(cols * rows * tile * tile / (width * height), 0.6)
        score = area_score * min(ratio / aspect, aspect / ratio)
        if score > best_score:
            best, best_score = (cols, rows), score
    return best


def resize_bicubic_u8(img_chw: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """torchvision's uint8 bicubic resize with antialias: float32 interpolate, clamp, round."""
    if img_chw.shape[-2:] == (height, width):
        return img_chw
    x = F.interpolate(
        img_chw[None].to(torch.float32),
        size=(height, width),
        mode="bicubic",
        align_corners=False,
        antialias=True,
    )[0]
    return x.clamp_(0, 255).round_().to(torch.uint8)


class Gr00tProcessor:
    """Tokenizer + image preprocessing of GR00T N1.5 (Eagle 2.5 processor semantics).

    `__call__(images, texts)`: `images[i]` holds sample i's frames, frame-major then view, each a
    uint8 (H, W, 3) RGB array (a list, or one (N, H, W, 3) array); `texts[i]` is its instruction
    (None -> DEFAULT_INSTRUCTION). Returns `eagle_input_ids` (B, L) int64, `eagle_attention_mask`
    (B, L) int64 (left padding with PAD_TOKEN_ID), `eagle_pixel_values` (tiles, 3, 224, 224) float32.
    """

    def __init__(self, tokenizer: Any, image_config: dict, processor_config: dict | None = None):
        processor_config = processor_config or {}
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        # The backend (tokenizers.Tokenizer) encodes without the Python wrapper's overhead.
        self._backend = tokenizer.backend_tokenizer
        self.tile_size = int(image_config["size"]["height"])
        if int(image_config["size"]["width"]) != self.tile_size:
            raise ValueError("preprocessor_config.json: size.height and size.width must be equal")
        self.min_tiles = int(image_config.get("min_dynamic_tiles", 1))
        self.max_tiles = int(image_config.get("max_dynamic_tiles", 12))
        self.use_thumbnail = bool(image_config.get("use_thumbnail", True))
        self.tokens_per_tile = int(
            processor_config.get("tokens_per_tile", image_config.get("tokens_per_tile", 256))
        )
        self._grids = candidate_grids(self.min_tiles, self.max_tiles)
        # Rescale (1/255) and normalise fused as (x - mean/r) / (std/r), as the reference does.
        r = (
            float(image_config.get("rescale_factor", 1 / 255))
            if image_config.get("do_rescale", True)
            else 1.0
        )
        mean = np.asarray(image_config.get("image_mean", [0.5] * 3), dtype=np.float64)
        std = np.asarray(image_config.get("image_std", [0.5] * 3), dtype=np.float64)
        if not image_config.get("do_normalize", True):
            mean, std = np.zeros(3), np.ones(3)
        self._mean = torch.tensor(mean / r, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std / r, dtype=torch.float32).view(1, 3, 1, 1)
        # Same value on every channel (N1.5: 127.5 / 127.5): scalar ops are ~3x faster than broadcasting.
        self._scalar = (
            (float(self._mean[0, 0, 0, 0]), float(self._std[0, 0, 0, 0]))
            if bool((self._mean == self._mean[0, 0]).all() and (self._std == self._std[0, 0]).all())
            else None
        )

        vocab = tokenizer.get_vocab()
        self.pad_token_id = PAD_TOKEN_ID
        if tokenizer.pad_token_id != PAD_TOKEN_ID:
            raise ValueError(
                f"tokenizer pad token id is {tokenizer.pad_token_id}, expected {PAD_TOKEN_ID} (<|endoftext|>)"
            )
        self.image_token_id = vocab[processor_config.get("image_token", IMG_CONTEXT_TOKEN)]
        self.img_start_id = vocab[processor_config.get("image_start_token", IMG_START_TOKEN)]
        self.img_end_id = vocab[processor_config.get("image_end_token", IMG_END_TOKEN)]
        # Fixed pieces, each bounded by special tokens (or by the image tag's regex boundary).
        self._header = self._encode(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n")
        self._trailer = self._encode("<|im_end|>\n<|im_start|>assistant\n")
        self._text_cache: dict[str, list[int]] = {}
        self._image_cache: dict[tuple[int, int], list[int]] = {}

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> Gr00tProcessor:
        """Load from a folder holding the tokenizer/processor files; None = the shipped package data."""
        from transformers import Qwen2TokenizerFast

        folder = Path(path) if path is not None else ASSETS_DIR
        missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"Gr00tProcessor.from_pretrained: {folder} lacks {', '.join(missing)}; pass a folder with "
                f"the Eagle-2.5 tokenizer/processor files, or None for the copy shipped in {ASSETS_DIR}"
            )
        tokenizer = Qwen2TokenizerFast.from_pretrained(str(folder), local_files_only=True)
        image_config = json.loads((folder / "preprocessor_config.json").read_text())
        proc_file = folder / "processor_config.json"
        processor_config = json.loads(proc_file.read_text()) if proc_file.is_file() else {}
        return cls(tokenizer, image_config, processor_config)

    # ------------------------------------------------------------------------------------ text
    def _encode(self, text: str) -> list[int]:
        return self._backend.encode(text, add_special_tokens=False).ids

    def _text_ids(self, text: str) -> list[int]:
        ids = self._text_cache.get(text)
        if ids is None:
            ids = self._encode(text)
            if len(self._text_cache) < 65536:
                self._text_cache[text] = ids
        return ids

    def _image_block(self, k: int, tiles: int) -> list[int]:
        """Tokens of image k (1-based): `<image k>` as text, <img>, 256 x tiles <IMG_CONTEXT>, </img>."""
        block = self._image_cache.get((k, tiles))
        if block is None:
            block = [
                *self._encode(f"<image {k}>"),
                self.img_start_id,
                *([self.image_token_id] * (self.tokens_per_tile * tiles)),
                self.img_end_id,
            ]
            self._image_cache[(k, tiles)] = block
        return block

    def sample_input_ids(self, tiles_per_image: Sequence[int], text: str | None) -> list[int]:
        """Token ids of one sample whose images produce `tiles_per_image` tiles each."""
        text = DEFAULT_INSTRUCTION if text is None else text
        if not tiles_per_image:
            # No image: the text is not separated from "user\n" by a special token.
            return self._encode(render_prompt(0, text))
        ids = list(self._header)
        for k, tiles in enumerate(tiles_per_image, start=1):
            ids.extend(self._image_block(k, tiles))
        ids.extend(self._text_ids(text))
        ids.extend(self._trailer)
        return ids

    def pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-pad token rows to the longest with PAD_TOKEN_ID; returns (input_ids, attention_mask)."""
        length = max(len(r) for r in rows)
        ids = np.full((len(rows), length), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for i, row in enumerate(rows):
            if row:
                ids[i, length - len(row) :] = row
                mask[i, length - len(row) :] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask)

    # ---------------------------------------------------------------------------------- images
    def pixel_normalization(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) (3,) float32 on the 0-255 scale: `normalize` computes (x - mean) / std.
        The batched device-side augmentation (data/transforms/video_batch.py) applies it there."""
        return self._mean.reshape(3).clone(), self._std.reshape(3).clone()

    def normalize(self, tiles_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float32 (x - mean) / std, e.g. (x - 127.5) / 127.5."""
        x = tiles_u8.to(torch.float32, memory_format=torch.contiguous_format)
        if self._scalar is not None:
            return x.sub_(self._scalar[0]).div_(self._scalar[1])
        return x.sub_(self._mean).div_(self._std)

    def tile_image(self, img_hwc: np.ndarray) -> torch.Tensor:
        """One uint8 (H, W, 3) image -> uint8 tiles (n, 3, tile, tile) by the dynamic-tiling rule."""
        h, w = img_hwc.shape[:2]
        t = self.tile_size
        chw = torch.from_numpy(np.ascontiguousarray(img_hwc)).permute(2, 0, 1)
        cols, rows = choose_grid(w, h, t, self._grids)
        resized = resize_bicubic_u8(chw, rows * t, cols * t)
        # (3, rows*t, cols*t) -> (rows*cols, 3, t, t), row-major tile order.
        tiles = resized.reshape(3, rows, t, cols, t).permute(1, 3, 0, 2, 4).reshape(rows * cols, 3, t, t)
        if rows * cols > 1 and self.use_thumbnail:
            tiles = torch.cat([tiles, resize_bicubic_u8(chw, t, t)[None]], dim=0)
        return tiles

    def process_images(self, images: Sequence[ImageInput]) -> tuple[torch.Tensor, list[list[int]]]:
        """All samples' images -> (pixel values (tiles, 3, t, t) float32, tiles per image per sample)."""
        t = self.tile_size
        flat: list[np.ndarray] = []
        counts: list[int] = []
        for sample in images:
            frames = list(sample) if not isinstance(sample, np.ndarray) or sample.ndim == 4 else [sample]
            for f in frames:
                if f.ndim != 3 or f.shape[2] != 3:
                    raise ValueError(
                        f"Gr00tProcessor: images must be (H, W, 3) RGB arrays, got shape {f.shape}"
                    )
            flat.extend(frames)
            counts.append(len(frames))
        if not flat:
            empty = torch.empty((0, 3, t, t), dtype=torch.float32)
            return empty, [[] for _ in images]
        if all(f.shape[:2] == (t, t) for f in flat):
            # Common case (the data transforms already resized to 224): one tile per image, no resize.
            stacked = torch.from_numpy(np.stack(flat).astype(np.uint8, copy=False)).permute(0, 3, 1, 2)
            pixel_values = self.normalize(stacked)
            tiles_per_image = [1] * len(flat)
        else:
            tiled = [self.tile_image(f.astype(np.uint8, copy=False)) for f in flat]
            pixel_values = self.normalize(torch.cat(tiled, dim=0))
            tiles_per_image = [len(x) for x in tiled]
        out, pos = [], 0
        for n in counts:
            out.append(tiles_per_image[pos : pos + n])
            pos += n
        return pixel_values, out

    # ------------------------------------------------------------------------------------ call
    def __call__(self, images: Sequence[ImageInput], texts: Sequence[str | None]) -> dict[str, torch.Tensor]:
        if len(images) != len(texts):
            raise ValueError(f"Gr00tProcessor: got {len(images)} image lists but {len(texts)} texts")
        pixel_values, tiles = self.process_images(images)
        rows = [self.sample_input_ids(tl, text) for tl, text in zip(tiles, texts, strict=True)]
        input_ids, attention_mask = self.pad(rows)
        return {
            "eagle_input_ids": input_ids,
            "eagle_attention_mask": attention_mask,
            "eagle_pixel_values": pixel_values,
        }

    def __getstate__(self) -> dict:
        # Workers rebuild the caches; keep pickles (DataLoader workers) small.
        state = dict(self.__dict__)
        state["_text_cache"] = {}
        state["_image_cache"] = {}
        return state
