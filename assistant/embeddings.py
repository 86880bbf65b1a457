"""The one sentence-embedding model, loaded once and shared by retrieval, safety and indexing."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np

from .settings import Settings, get_settings

log = logging.getLogger(__name__)


class Embedder:
    """Normalised all-MiniLM-L6-v2 vectors with a small LRU cache for repeated short texts.

    The cache matters because the safety screen and retrieval often embed the same sentence
    of one message; a single batched call fills it for both.
    """

    def __init__(self, settings: Settings | None = None, cache_size: int = 4096) -> None:
        import torch
        import transformers.utils.logging as hf_logging
        from sentence_transformers import SentenceTransformer

        hf_logging.disable_progress_bar()  # a weights-loading bar on every start is noise, not progress

        self.settings = settings or get_settings()
        torch.set_num_threads(max(1, self.settings.torch_threads))
        self.model_path = self.settings.resolved_model_path()
        self.model = SentenceTransformer(self.model_path, device="cpu", local_files_only=True)
        self.tokenizer = self.model.tokenizer
        self.max_tokens = int(self.model.max_seq_length)
        self.dim = int(self.model.get_embedding_dimension())
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        log.debug("loaded embedding model from %s (max %d tokens)", self.model_path, self.max_tokens)

    @property
    def model_name(self) -> str:
        return "all-MiniLM-L6-v2"

    def count_tokens(self, text: str) -> int:
        """Word pieces as the model sees them, including [CLS] and [SEP]."""
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: list[np.ndarray | None] = [None] * len(texts)
        missing: list[int] = []
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = hit
        if missing:
            vecs = self.model.encode(
                [texts[i] for i in missing],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            ).astype(np.float32)
            with self._lock:
                for i, v in zip(missing, vecs):
                    out[i] = v
                    if len(texts[i]) <= 2000:
                        self._cache[texts[i]] = v
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.vstack(out)

    def encode_uncached(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """For bulk indexing: documents should not crowd queries out of the cache."""
        return self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        ).astype(np.float32)


_default: Embedder | None = None
_default_lock = threading.Lock()


def get_embedder(settings: Settings | None = None) -> Embedder:
    global _default
    with _default_lock:
        if _default is None:
            _default = Embedder(settings)
        return _default
