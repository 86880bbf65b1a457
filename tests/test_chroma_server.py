"""The scale-out path: a real `chroma run` server on loopback, indexed and queried over HTTP."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.settings import Settings
from conftest import CORPUS, free_port


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        exe = Path(shutil.which("chroma") or "chroma")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = open(data / "server.log", "w")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    import chromadb

    deadline = time.time() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"chroma server did not start: {(data / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield port
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


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
