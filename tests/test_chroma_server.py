"""The scale-out path: a real `chroma run` server on loopback, indexed and queried over HTTP."""

from __future__ import annotations

import pytest

from assistant.settings import Settings
from conftest import CORPUS, chroma_run, chroma_stop, free_port


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    port = free_port()
    proc = chroma_run(tmp_path_factory.mktemp("chroma-server"), port)
    yield port
    chroma_stop(proc)


def test_index_and_answer_through_a_chroma_server(chroma_server, tmp_path, embedder):
    from assistant import Assistant
    from assistant.store import build_index

    settings = Settings(
        chroma_host="127.0.0.1", chroma_port=chroma_server, collection="server_test",
        index_dir=tmp_path / "manifest-only", corpus_dir=CORPUS,
    )
    first = build_index(settings, progress=False)
    assert len(first.added_docs) == 5 and first.records_added > 0
    assert build_index(settings, progress=False).records_added == 0
    assert not any((tmp_path / "manifest-only").glob("*.sqlite3"))

    bot = Assistant(settings, embedder=embedder)
    result = bot.answer("what shoes should I wear if my feet roll inwards?")
    assert result.kind == "answer"
    assert any("stability shoes" in c.quote for c in result.citations)
