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


def test_two_serve_processes_share_one_chroma_server(chroma_server, tmp_path):
    """The scale-out path: two `backpain serve` processes on one Chroma server answer alike (votes
    from several processes into one feedback file are tested in test_feedback.py)."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from gradio_client import Client

    from assistant.store import build_index

    env = {**os.environ, "BACKPAIN_CHROMA_HOST": "127.0.0.1", "BACKPAIN_CHROMA_PORT": str(chroma_server),
           "BACKPAIN_COLLECTION": "scale_out", "BACKPAIN_INDEX_DIR": str(tmp_path / "manifest"),
           "BACKPAIN_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"), "HF_HUB_OFFLINE": "1"}
    build_index(Settings(chroma_host="127.0.0.1", chroma_port=chroma_server, collection="scale_out",
                         index_dir=tmp_path / "manifest", corpus_dir=CORPUS), progress=False)
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(p)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
    try:
        for proc, port in zip(procs, ports):
            deadline = time.time() + 180
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2)
                    break
                except OSError:
                    assert proc.poll() is None and time.time() < deadline, "backpain serve did not start"
                    time.sleep(0.5)
        answers = []
        for port in ports:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            got = client.predict("what shoes should I wear if my feet roll inwards?", [], api_name="/ask")
            got.pop("timings_ms")
            answers.append(got)
            client.close()
        assert answers[0] == answers[1] and answers[0]["kind"] == "answer"
        assert any("stability shoes" in c["quote"] for c in answers[0]["citations"])
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
