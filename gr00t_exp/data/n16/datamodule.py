"""The data module of a GR00T N1.6 fine-tune: the N1.5 module's datasets, N1.6 processing.

Datasets, the episode split, mixtures, frame cache and loaders are `Gr00tDataModule`'s; what
changes is the sample -> batch path: the datasets return raw samples and `N16Collator` runs the
N1.6 processor (its training image augmentation in the training loader only), whose
processor_config.json / statistics.json / embodiment_id.json are built here from the (first)
dataset: its column statistics, per-step relative-action statistics, and the model's padding
sizes. `processor_files()` is what the export writes beside the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from gr00t_exp.data.datamodule import Gr00tDataModule
from gr00t_exp.data.meta import DatasetMeta
from gr00t_exp.data.n16.collate import N16Collator
from gr00t_exp.data.n16.processor_files import processor_files, relative_keys
from gr00t_exp.data.n16.relative_stats import load_or_compute_relative_stats
from gr00t_exp.data.video import FrameCache
from gr00t_exp.embodiment import EmbodimentLayout
from gr00t_exp.model.build import n16_architecture
from gr00t_exp.model.checkpoint import resolve_checkpoint_dir
from gr00t_exp.model.n16.checkpoint import read_config, read_processor_files
from gr00t_exp.model.n16.processor import Gr00tN16Processor
from gr00t_exp.model.processor import ASSETS_DIR


class Gr00tN16DataModule(Gr00tDataModule):
    """model_config: the Gr00tN16Config batches must fit (padding sizes, action horizon);
    base_files: the base checkpoint's processor files ({file name: content}), None for a random init."""

    def __init__(
        self,
        data_cfg: Any,
        embodiment: Any,
        model_config: Any,
        base_files: dict[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        seed: int = 42,
        synthetic_dir: str | Path | None = None,
    ) -> None:
        super().__init__(
            data_cfg, embodiment, None, cache_dir=cache_dir, seed=seed, synthetic_dir=synthetic_dir
        )
        self.model_config = model_config
        self.base_files = base_files
        self.relative = relative_keys(embodiment)
        self._files: dict[str, Any] | None = None
        self._n16_processor: Any = None

    @classmethod
    def from_config(cls, cfg: Any, processor: Any = None) -> Gr00tN16DataModule:
        m = cfg.model
        arch = n16_architecture(m)
        base_files = None
        if m.base_model_path and not m.random_init:
            # The pretrained base (a hub id is fetched once; the model build reuses the cache): its
            # sizes are what the batches must fit, its processor files what the run extends.
            base = resolve_checkpoint_dir(str(m.base_model_path), m.revision)
            arch, _ = read_config(base)
            arch.set_action_chunk(m.action_horizon, m.max_action_dim)
            base_files = read_processor_files(base, required=False)
        return cls(
            cfg.data,
            cfg.embodiment,
            arch,
            base_files or None,
            cache_dir=cfg.paths.cache_dir,
            seed=int(cfg.seed),
        )

    def dataset(
        self,
        meta: DatasetMeta,
        stats: dict,
        episodes: list[int],
        *,
        training: bool,
        frame_cache: FrameCache | None,
    ) -> Dataset:
        ds = super().dataset(meta, stats, episodes, training=training, frame_cache=frame_cache)
        ds.do_transform = False  # raw samples: the N1.6 processor normalises, transforms and packs
        return ds

    # ------------------------------------------------------------------ processor
    def processor_files(self) -> dict[str, Any]:
        """processor_config.json / statistics.json / embodiment_id.json of this run (first source)."""
        if self._files is None:
            self.setup("fit")
            meta, stats = self.metas[0], self.stats[0]
            layout = EmbodimentLayout.from_meta(self.embodiment, meta)
            rel = load_or_compute_relative_stats(meta, layout, self.relative, self.cache_dir)
            self._files = processor_files(
                layout, stats, meta.modality, rel, self.relative, self.model_config, self.base_files
            )
        return self._files

    @property
    def processor(self) -> Any:
        if self._n16_processor is None:
            from transformers import Qwen2TokenizerFast  # heavy: only once batches are made

            files = self.processor_files()
            tok = Qwen2TokenizerFast.from_pretrained(str(ASSETS_DIR), local_files_only=True)
            self._n16_processor = Gr00tN16Processor(
                tok,
                files["processor_config.json"]["processor_kwargs"],
                files["statistics.json"],
                files["embodiment_id.json"],
                source="the run's N1.6 processor files",
            )
        return self._n16_processor

    def collate_fn(self, training: bool = False) -> N16Collator:
        # Training batches get the processor's random crop / colour jitter; validation stays eval-mode.
        layout = EmbodimentLayout.from_meta(self.embodiment, self.metas[0])
        return N16Collator(self.processor, layout, training=training)

    def augment_on(self) -> str:
        # The N1.6 processor transforms the views itself (on the loader workers).
        return "cpu"
