"""Incremental, idempotent indexing into a real embedded Chroma store."""

from __future__ import annotations

import json

import pytest

from assistant.settings import Settings
from assistant.store import MANIFEST_NAME, Store


@pytest.fixture()
def store_for(tmp_path, embedder):
    def make(corpus, **overrides) -> Store:
        settings = Settings(index_dir=tmp_path / "index", corpus_dir=corpus, collection="incremental", **overrides)
        return Store(settings, embedder)

    return make


def _ids_by_source(store: Store) -> dict[str, set[str]]:
    got = store.collection().get(include=["metadatas"])
    out: dict[str, set[str]] = {}
    for rid, meta in zip(got["ids"], got["metadatas"]):
        out.setdefault(meta["source"], set()).add(rid)
    return out


def test_incremental_indexing_no_change_change_removal(corpus_copy, store_for):
    store = store_for(corpus_copy)
    first = store.sync(progress=False)
    assert len(first.added_docs) == 5 and first.records_added > 0
    before = _ids_by_source(store)
    total = sum(len(v) for v in before.values())
    assert store.collection().count() == total == first.records_added

    again = store.sync(progress=False)
    assert again.records_added == again.records_deleted == 0
    assert sorted(again.unchanged_docs) == sorted(before)
    assert _ids_by_source(store) == before

    target = corpus_copy / "walking-as-a-key-element-of-back-pain-exercises.md"
    text = target.read_text()
    target.write_text(text.replace("hold each stretch for at least 30 seconds", "hold each stretch for at least 45 seconds"))
    changed = store.sync(progress=False)
    assert changed.replaced_docs == [target.name]
    after = _ids_by_source(store)
    for source, ids in before.items():
        if source != target.name:
            assert after[source] == ids
    assert after[target.name] != before[target.name]
    docs = store.collection().get(where={"source": target.name}, include=["documents"])["documents"]
    assert any("45 seconds" in d for d in docs) and not any("30 seconds" in d for d in docs)
    assert store.collection().count() == sum(len(v) for v in after.values())

    (corpus_copy / "can-walking-relieve-back-pain.md").unlink()
    removed = store.sync(progress=False)
    assert removed.deleted_docs == ["can-walking-relieve-back-pain.md"]
    assert "can-walking-relieve-back-pain.md" not in _ids_by_source(store)

    manifest = json.loads((store.settings.index_dir / MANIFEST_NAME).read_text())
    assert sorted(manifest["documents"]) == sorted(p.name for p in corpus_copy.glob("*.md"))
    assert manifest["fingerprint"]["model"] == "all-MiniLM-L6-v2"


def test_settings_change_rebuilds(corpus_copy, store_for):
    store_for(corpus_copy).sync(progress=False)
    rechunked = store_for(corpus_copy, chunk_target_tokens=100)
    summary = rechunked.sync(progress=False)
    assert summary.rebuilt and len(summary.added_docs) == 5
    fingerprint = rechunked.collection().metadata["chunking"]
    assert "target100" in fingerprint
    assert rechunked.sync(progress=False).records_added == 0


def test_interrupted_build_is_completed_without_duplicates(corpus_copy, store_for):
    store = store_for(corpus_copy)
    store.sync(progress=False)
    full = _ids_by_source(store)
    victim = "does-walking-cause-back-pain.md"
    lost = sorted(full[victim])[: len(full[victim]) // 2]
    store.collection().delete(ids=lost)  # as if the process died half-way through this document
    repaired = store.sync(progress=False)
    assert repaired.replaced_docs == [victim]
    assert repaired.records_added == len(lost) and repaired.records_deleted == 0
    assert _ids_by_source(store) == full


def test_broken_file_in_corpus_is_skipped_and_rest_indexed(corpus_copy, store_for):
    (corpus_copy / "scan.md").write_bytes(b"\xff\xfe\x00\x00garbage\x00")
    summary = store_for(corpus_copy).sync(progress=False)
    assert summary.documents == 5
    assert any("scan.md" in w for w in summary.warnings)


def test_loaded_index_mirrors_the_collection(test_settings, embedder):
    loaded = Store(test_settings, embedder).load_records()
    assert len(loaded) == len(loaded.ids["chunk"]) > 50
    assert loaded.vectors["chunk"].shape == (len(loaded), embedder.dim)
    assert len(loaded.ids["window"]) == len(loaded.ids["sentence"]) > len(loaded)


def test_the_ensemble_collection_mirrors_the_first_row_for_row(corpus_copy, store_for):
    store = store_for(corpus_copy)
    assert store.second is not None and store.second.embedder.model_name == "all-mpnet-base-v2"
    first = store.sync(progress=False)
    assert first.ensemble_added == first.records_added > 0
    loaded = store.load_records()
    assert not loaded.problems()
    for kind, vectors in loaded.vectors.items():
        assert loaded.second[kind].shape == (len(vectors), store.second.embedder.dim)
    # each row holds the second model's vector of that row's text, not a neighbour's
    row = len(loaded.ids["sentence"]) // 2
    text = loaded.texts["sentence"][row]
    expected = store.second.embedder.encode_uncached([text])[0]
    assert float(loaded.second["sentence"][row] @ expected) > 0.999
    manifest = json.loads((store.settings.index_dir / MANIFEST_NAME).read_text())
    assert manifest["ensemble"]["fingerprint"]["model"] == "all-mpnet-base-v2"

    target = corpus_copy / "walking-as-a-key-element-of-back-pain-exercises.md"
    target.write_text(target.read_text().replace("at least 30 seconds", "at least 45 seconds"))
    changed = store.sync(progress=False)
    assert changed.ensemble_added == changed.records_added > 0
    assert changed.ensemble_deleted == changed.records_deleted > 0
    assert store.collection(second=True).count() == store.collection().count()


def test_ensemble_vectors_lost_mid_build_are_reported_and_restored(corpus_copy, store_for):
    store = store_for(corpus_copy)
    store.sync(progress=False)
    ids = store.collection(second=True).get(include=[])["ids"]
    lost = sorted(ids)[:40]
    store.collection(second=True).delete(ids=lost)  # as if the process died while embedding them
    problems = store.load_records().problems()
    assert problems == ["40 records without the ensemble model's vectors"]
    repaired = store.sync(progress=False)
    assert repaired.ensemble_added == 40 and repaired.records_added == 0
    assert not store.load_records().problems()


def test_ensemble_off_builds_one_collection(corpus_copy, store_for):
    store = store_for(corpus_copy, ensemble_model="none")
    assert store.second is None
    summary = store.sync(progress=False)
    assert summary.ensemble_added == 0
    assert store.load_records().second is None
    assert [c.name for c in store.client.list_collections()] == ["incremental"]
