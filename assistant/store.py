"""The Chroma store: embedded under ``index/`` by default, a Chroma server when a host is set.

Indexing is a diff, not a rebuild: record ids are content hashes, so comparing the ids a document
should have with the ids the store holds tells exactly what to add and delete. That makes a re-run
after an interrupted build finish the job, and a re-run with no change touch nothing.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .embeddings import Embedder, get_embedder
from .errors import CorpusError, ReadOnlyIndex, StoreError, StoreUnavailable
from .ingestion import Chunk, ChunkingConfig, chunk_document, load_corpus
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
RECORD_KINDS = ("chunk", "window", "sentence")
_ADD_BATCH = 256


REBUILD_HINT = "run `backpain index --rebuild` to build it again from the corpus"


def make_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_host:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)
    except Exception as exc:
        raise _failure(settings, "open", exc) from exc


def _failure(settings: Settings, action: str, exc: Exception) -> StoreError:
    """A Chroma or file-system failure as one line that says what to do."""
    if settings.chroma_host:
        return _unavailable(settings, exc)
    if _is_read_only(exc):
        return ReadOnlyIndex(
            f"cannot {action} the index at {settings.index_dir}: the folder is read-only. Make it "
            "writable, or set BACKPAIN_INDEX_DIR to a folder you can write to"
        )
    return StoreError(f"cannot {action} the index at {settings.index_dir} ({_short(exc)}): {REBUILD_HINT}")


def _is_read_only(exc: BaseException) -> bool:
    return isinstance(exc, PermissionError) or bool(_READ_ONLY.search(str(exc)))


_READ_ONLY = re.compile(r"read\W*only", re.I)  # SQLite's "attempt to write a readonly database" and the like
_CHROMA_SEGMENT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def discard_unopenable_index(settings: Settings) -> None:
    """An embedded index too damaged to open cannot drop its own collection, so its Chroma files
    (the database and its segment folders) and the manifest go; all of it is rebuilt from the
    corpus. Anything else in the folder stays. A server-side index is never touched."""
    if settings.chroma_host:
        return
    try:
        make_client(settings)
        return
    except ReadOnlyIndex:
        raise
    except StoreError:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()  # the failed open stays cached per path otherwise
    log.warning("removing the damaged index at %s", settings.index_dir)
    for child in settings.index_dir.iterdir():
        if child.is_dir() and _CHROMA_SEGMENT.match(child.name):
            shutil.rmtree(child)
        elif child.is_file() and (child.name.startswith("chroma.sqlite3") or child.name == MANIFEST_NAME):
            child.unlink()


def _unavailable(settings: Settings, exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(
        f"the Chroma server at {settings.chroma_host}:{settings.chroma_port} does not answer ({_short(exc)}): "
        "start it (`chroma run --path index-server --port PORT`) or unset BACKPAIN_CHROMA_HOST to use the "
        "embedded index"
    )


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def index_fingerprint(settings: Settings, embedder: Embedder) -> dict[str, str]:
    cfg = chunking_config(settings)
    return {
        "schema": str(SCHEMA_VERSION),
        "model": embedder.model_name,
        "precision": embedder.precision,
        "model_dim": str(embedder.dim),
        "chunking": cfg.fingerprint(),
    }


def chunking_config(settings: Settings) -> ChunkingConfig:
    return ChunkingConfig(max_tokens=settings.chunk_max_tokens, target_tokens=settings.chunk_target_tokens)


@dataclass(frozen=True)
class Record:
    id: str
    kind: str
    text: str
    embed_text: str
    metadata: dict[str, Any]


def records_for(chunk: Chunk) -> list[Record]:
    """One chunk record, plus per sentence a window (with neighbours) and the bare sentence.

    Windows are what retrieval scores best on casual questions; bare sentences are what the
    composer quotes, so both are embedded once here instead of at question time.
    """
    base = {
        "source": chunk.source,
        "title": chunk.title,
        "section": chunk.section,
        "chunk_id": chunk.id,
        "order": chunk.order,
        "doc_hash": chunk.doc_hash,
    }
    out = [Record(chunk.id, "chunk", chunk.text, chunk.embed_text, {**base, "kind": "chunk", "position": -1, "is_item": False})]
    sents = chunk.sentences
    for i, s in enumerate(sents):
        window = " ".join(x.text for x in sents[max(0, i - 1): i + 2])
        meta = {**base, "position": i, "is_item": s.is_item}
        out.append(Record(f"{chunk.id}:w{i}", "window", window, f"{chunk.section}. {window}", {**meta, "kind": "window"}))
        out.append(Record(f"{chunk.id}:s{i}", "sentence", s.text, s.text, {**meta, "kind": "sentence"}))
    return out


@dataclass
class IndexSummary:
    documents: int = 0
    added_docs: list[str] = field(default_factory=list)
    replaced_docs: list[str] = field(default_factory=list)
    deleted_docs: list[str] = field(default_factory=list)
    unchanged_docs: list[str] = field(default_factory=list)
    records_added: int = 0
    records_deleted: int = 0
    # the same records' vectors from the ensemble model, in its own collection
    ensemble_added: int = 0
    ensemble_deleted: int = 0
    rebuilt: bool = False
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.documents} documents: {len(self.added_docs)} added, {len(self.replaced_docs)} replaced, "
            f"{len(self.deleted_docs)} deleted, {len(self.unchanged_docs)} unchanged "
            f"({self.records_added} records added, {self.records_deleted} deleted"
            f"{f'; ensemble model: {self.ensemble_added} added, {self.ensemble_deleted} deleted' if self.ensemble_added or self.ensemble_deleted else ''}"
            f"{', full rebuild' if self.rebuilt else ''}; {len(self.warnings)} files skipped) in {self.seconds:.1f}s"
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SecondSpace:
    """The ensemble model's vectors of the same records, in a collection of their own."""

    collection: str
    embedder: Embedder
    fingerprint: dict[str, str]


class Store:
    """The collection and what was indexed into it (and the ensemble model's collection beside it)."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or get_settings()
        self.embedder = embedder or get_embedder(self.settings)
        self.client = make_client(self.settings)
        self.fingerprint = index_fingerprint(self.settings, self.embedder)
        other = self.settings.ensemble_settings()
        self.second: SecondSpace | None = None
        if other is not None:
            second = get_embedder(other)
            # the records are cut with the first model's tokenizer, so its name is part of the match
            fingerprint = {**index_fingerprint(self.settings, second), "chunked_by": self.embedder.model_name}
            self.second = SecondSpace(other.collection, second, fingerprint)

    def collection(self, create: bool = True, second: bool = False):
        name, fingerprint = ((self.second.collection, self.second.fingerprint) if second
                             else (self.settings.collection, self.fingerprint))
        if create:
            return self.client.get_or_create_collection(
                name, metadata={**fingerprint, "hnsw:space": "cosine"}, embedding_function=None
            )
        return self.client.get_collection(name, embedding_function=None)

    def _existing(self, col) -> dict[str, dict[str, str]]:
        """source -> {record id -> doc_hash} for everything in the collection."""
        got = col.get(include=["metadatas"])
        by_source: dict[str, dict[str, str]] = defaultdict(dict)
        for rid, meta in zip(got["ids"], got["metadatas"] or []):
            by_source[(meta or {}).get("source", "")][rid] = (meta or {}).get("doc_hash", "")
        return by_source

    @staticmethod
    def _settings_match(col, fingerprint: dict[str, str]) -> bool:
        meta = col.metadata or {}
        return all(str(meta.get(k)) == v for k, v in fingerprint.items())

    def sync(self, corpus_dir: Path | None = None, progress: bool = True) -> IndexSummary:
        """Brings the collection in line with the corpus; only changed documents are re-embedded."""
        try:
            return self._sync(corpus_dir, progress)
        except (StoreError, CorpusError):
            raise
        except Exception as exc:
            raise _failure(self.settings, "update", exc) from exc

    def _sync(self, corpus_dir: Path | None, progress: bool) -> IndexSummary:
        start = time.perf_counter()
        folder = Path(corpus_dir or self.settings.corpus_dir)
        docs, warnings = load_corpus(folder)
        summary = IndexSummary(documents=len(docs), warnings=warnings)
        cfg = chunking_config(self.settings)

        col = self.collection()
        if not self._settings_match(col, self.fingerprint):
            log.info("model or chunking settings changed: rebuilding the index")
            self.client.delete_collection(self.settings.collection)
            col = self.collection()
            summary.rebuilt = True
        existing = self._existing(col)
        wanted_everywhere: dict[str, Record] = {}

        to_add: list[Record] = []
        to_delete: list[str] = []
        current_sources = set()
        for doc in docs:
            current_sources.add(doc.source)
            wanted = {r.id: r for c in chunk_document(doc, cfg, self.embedder.count_tokens) for r in records_for(c)}
            wanted_everywhere.update(wanted)
            have = existing.get(doc.source, {})
            missing = [r for rid, r in wanted.items() if rid not in have]
            stale = [rid for rid in have if rid not in wanted]
            if not have:
                summary.added_docs.append(doc.source)
            elif missing or stale:
                summary.replaced_docs.append(doc.source)
            else:
                summary.unchanged_docs.append(doc.source)
            to_add.extend(missing)
            to_delete.extend(stale)
        for source, ids in existing.items():
            if source not in current_sources:
                summary.deleted_docs.append(source or "(unknown)")
                to_delete.extend(ids)

        if to_delete:
            for i in range(0, len(to_delete), 5000):
                col.delete(ids=to_delete[i:i + 5000])
        if to_add:
            self._add(col, to_add, progress, self.embedder)
        summary.records_added = len(to_add)
        summary.records_deleted = len(to_delete)
        if self.second is not None:
            summary.ensemble_added, summary.ensemble_deleted = self._sync_second(wanted_everywhere, progress)
        summary.seconds = time.perf_counter() - start
        self._write_manifest(docs, summary)
        log.info("index: %s", summary.line())
        return summary

    def _sync_second(self, wanted: dict[str, Record], progress: bool) -> tuple[int, int]:
        """The ensemble collection holds exactly the first one's records: (added, deleted)."""
        col = self.collection(second=True)
        if not self._settings_match(col, self.second.fingerprint):
            self.client.delete_collection(self.second.collection)
            col = self.collection(second=True)
        have = set(col.get(include=[])["ids"])
        stale = [rid for rid in have if rid not in wanted]
        for i in range(0, len(stale), 5000):
            col.delete(ids=stale[i:i + 5000])
        missing = [r for rid, r in wanted.items() if rid not in have]
        if missing:
            self._add(col, missing, progress, self.second.embedder)
        return len(missing), len(stale)

    def _add(self, col, records: list[Record], progress: bool, embedder: Embedder) -> None:
        from tqdm import tqdm

        desc = "Embedding" if embedder is self.embedder else f"Embedding ({embedder.model_name})"
        bar = tqdm(total=len(records), desc=desc, unit="rec", disable=not progress)
        try:
            for i in range(0, len(records), _ADD_BATCH):
                batch = records[i:i + _ADD_BATCH]
                vectors = embedder.encode_uncached([r.embed_text for r in batch])
                col.upsert(
                    ids=[r.id for r in batch],
                    embeddings=vectors,
                    documents=[r.text for r in batch],
                    metadatas=[r.metadata for r in batch],
                )
                bar.update(len(batch))
        finally:
            bar.close()

    def _write_manifest(self, docs, summary: IndexSummary) -> None:
        manifest = {
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "fingerprint": self.fingerprint,
            "store": f"http://{self.settings.chroma_host}:{self.settings.chroma_port}" if self.settings.chroma_host else "embedded",
            "collection": self.settings.collection,
            "ensemble": {"collection": self.second.collection, "fingerprint": self.second.fingerprint} if self.second else None,
            "documents": {d.source: d.content_hash for d in docs},
            "last_run": summary.to_dict(),
        }
        self.settings.index_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings.index_dir / MANIFEST_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2))
        tmp.replace(path)

    def load_records(self) -> "LoadedIndex":
        from chromadb.errors import NotFoundError

        try:
            col = self.collection(create=False)
            if not self._settings_match(col, self.fingerprint):
                raise StoreError("the index was built with other model or chunking settings: run `backpain index`")
            got = col.get(include=["embeddings", "documents", "metadatas"])
            loaded = LoadedIndex.from_chroma(got)
            if self.second is not None:
                loaded.attach_second(self._second_vectors())
        except NotFoundError as exc:
            raise StoreError(
                f"no index named '{self.settings.collection}' in the store: run `backpain index` first"
            ) from exc
        except StoreError:
            raise
        except Exception as exc:
            raise _failure(self.settings, "read", exc) from exc
        return loaded

    def _second_vectors(self) -> dict[str, np.ndarray]:
        """The ensemble model's vectors by record id; none when its collection is missing or was
        built for other settings (the index then reports the records as incomplete)."""
        from chromadb.errors import NotFoundError

        try:
            col = self.collection(create=False, second=True)
        except NotFoundError:
            return {}
        if not self._settings_match(col, self.second.fingerprint):
            return {}
        got = col.get(include=["embeddings"])
        embeddings = got.get("embeddings")
        return dict(zip(got["ids"], embeddings if embeddings is not None else []))

    def rebuild(self, corpus_dir: Path | None = None, progress: bool = True) -> IndexSummary:
        """Drops the collection and builds it again from the corpus."""
        from chromadb.errors import NotFoundError

        names = [self.settings.collection] + ([self.second.collection] if self.second else [])
        for name in names:
            try:
                self.client.delete_collection(name)
            except NotFoundError:
                pass
            except Exception as exc:
                raise _failure(self.settings, "rebuild", exc) from exc
        summary = self.sync(corpus_dir, progress=progress)
        summary.rebuilt = True
        return summary



@dataclass
class LoadedIndex:
    """The collection mirrored in memory, grouped by record kind, for microsecond scoring."""

    ids: dict[str, list[str]]
    texts: dict[str, list[str]]
    metas: dict[str, list[dict]]
    vectors: dict[str, np.ndarray]
    # the ensemble model's vectors, row for row with ``vectors`` (None: no ensemble), and how many
    # records it lacks (an interrupted build)
    second: dict[str, np.ndarray] | None = None
    second_missing: int = 0

    @classmethod
    def from_chroma(cls, got: dict) -> "LoadedIndex":
        rows: dict[str, list[tuple]] = {k: [] for k in RECORD_KINDS}
        embeddings = got.get("embeddings")
        for rid, doc, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], embeddings if embeddings is not None else []):
            kind = (meta or {}).get("kind")
            if kind in rows:
                rows[kind].append((rid, doc, meta, vec))
        for kind in rows:
            rows[kind].sort(key=lambda r: (r[2]["source"], r[2]["order"], r[2]["position"]))
        return cls(
            ids={k: [r[0] for r in v] for k, v in rows.items()},
            texts={k: [r[1] for r in v] for k, v in rows.items()},
            metas={k: [r[2] for r in v] for k, v in rows.items()},
            vectors={k: _matrix([r[3] for r in v]) for k, v in rows.items()},
        )

    def __len__(self) -> int:
        return len(self.ids["chunk"])

    def attach_second(self, by_id: dict[str, Any]) -> None:
        self.second_missing = sum(rid not in by_id for kind in RECORD_KINDS for rid in self.ids[kind])
        if self.second_missing:
            self.second = None
            return
        self.second = {kind: _matrix([by_id[rid] for rid in self.ids[kind]]) for kind in RECORD_KINDS}

    def problems(self) -> list[str]:
        """What an interrupted build leaves behind: windows without their sentence (or the other way
        round), or records whose chunk is missing. Empty when the index is whole."""
        def keys(kind: str) -> set[tuple[str, int]]:
            return {(m["chunk_id"], m["position"]) for m in self.metas[kind]}

        out = []
        windows, sentences = keys("window"), keys("sentence")
        if windows != sentences:
            out.append(f"{len(windows ^ sentences)} windows and sentences out of step")
        orphans = {c for c, _ in windows | sentences} - set(self.ids["chunk"])
        if orphans:
            out.append(f"{len(orphans)} passages missing")
        if self.second_missing:
            out.append(f"{self.second_missing} records without the ensemble model's vectors")
        return out


def _matrix(vectors: list) -> np.ndarray:
    """Rows of one kind as a float32 matrix; (0, 0) for a kind with none (an empty index)."""
    return np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1) if vectors else np.zeros((0, 0), np.float32)


def build_index(settings: Settings | None = None, corpus_dir: Path | None = None, progress: bool = True) -> IndexSummary:
    return Store(settings).sync(corpus_dir, progress=progress)

