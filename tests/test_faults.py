"""Faults: a Chroma server stopped mid-session, and `kill -9` while indexing. Nothing is lost,
nothing crashes, and everything recovers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from assistant.errors import StoreUnavailable
from assistant.settings import Settings
from conftest import CORPUS, chroma_run, chroma_stop, free_port


def test_a_chroma_server_stopped_mid_session(tmp_path, embedder):
    """Indexing says clearly that the server is gone, answering goes on from the in-memory
    mirror, and both work again when the server is back (same data, same port)."""
    from assistant import Assistant
    from assistant.store import build_index

    port = free_port()
    data = tmp_path / "server"
    proc = chroma_run(data, port)
    settings = Settings(chroma_host="127.0.0.1", chroma_port=port, collection="faults", index_dir=tmp_path / "m",
                        corpus_dir=CORPUS)
    try:
        assert build_index(settings, progress=False).records_added > 0
        bot = Assistant(settings, embedder=embedder)
        before = bot.answer("how long should I walk each day with a bad back?").to_dict()
        chroma_stop(proc)

        during = bot.answer("how long should I walk each day with a bad back?").to_dict()
        assert during["kind"] == "answer" and during["citations"] == before["citations"]
        assert bot.answer("what shoes are best for walking?").kind == "answer"  # a question not cached
        with pytest.raises(StoreUnavailable) as down:
            build_index(settings, progress=False)
        assert "does not answer" in str(down.value) and "chroma run" in str(down.value)
        with pytest.raises(StoreUnavailable):
            Assistant(settings, embedder=embedder)

        proc = chroma_run(data, port)
        again = build_index(settings, progress=False)
        assert again.records_added == 0 and len(again.unchanged_docs) == 5  # nothing was lost
        assert Assistant(settings, embedder=embedder).answer("how long should I walk each day with a bad back?") \
            .to_dict()["citations"] == before["citations"]
    finally:
        chroma_stop(proc)


def _record_count(settings: Settings) -> tuple[int, int]:
    from assistant.store import Store

    col = Store(settings).collection(create=False)
    ids = col.get(include=[])["ids"]
    return len(ids), len(set(ids))


@pytest.mark.parametrize("kill_after", [2.5, 4.0, 5.5, 7.0])
def test_kill_9_while_indexing_then_the_next_run_completes(tmp_path, test_settings, kill_after):
    """The index command is killed outright at several points (model loading, embedding, writing);
    the next run completes, with no duplicate and no crash on load."""
    from assistant import Assistant

    env = {**os.environ, "BACKPAIN_INDEX_DIR": str(tmp_path / "index"), "BACKPAIN_COLLECTION": "killed",
           "BACKPAIN_CORPUS_DIR": str(CORPUS)}
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "index", str(CORPUS), "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(kill_after)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    done = subprocess.run([sys.executable, "-m", "assistant.cli", "index", str(CORPUS), "-q"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    settings = test_settings.model_copy(update={"index_dir": tmp_path / "index", "collection": "killed"})
    total, unique = _record_count(settings)
    clean_total, _ = _record_count(test_settings)
    assert total == unique == clean_total
    bot = Assistant(settings)
    assert bot.answer("is walking good for lower back pain?").kind == "answer"
    shutil.rmtree(tmp_path / "index")
