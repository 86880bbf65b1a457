"""Shared fixtures: the real model, and one real Chroma index built once per test session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from assistant.settings import PROJECT_ROOT, Settings  # noqa: E402

CORPUS = PROJECT_ROOT / "corpus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chroma_run(data: Path, port: int) -> subprocess.Popen:
    """A real `chroma run` server on loopback, returned once it answers its heartbeat."""
    import chromadb

    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        exe = Path(shutil.which("chroma") or "chroma")
    data.mkdir(parents=True, exist_ok=True)
    log = open(data / "server.log", "a")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            return proc
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"chroma server did not start: {(data / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)


def chroma_stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


@pytest.fixture(scope="session")
def embedder():
    from assistant.embeddings import get_embedder

    return get_embedder()


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory, embedder) -> Settings:
    """Settings pointing at a fresh index built once from the shipped corpus."""
    from assistant.store import build_index

    root = tmp_path_factory.mktemp("session")
    settings = Settings(
        index_dir=root / "index",
        corpus_dir=CORPUS,
        collection="test_session",
        feedback_db=root / "feedback.sqlite3",
    )
    summary = build_index(settings, progress=False)
    assert summary.documents == len(list(CORPUS.glob("*.md")))
    return settings


@pytest.fixture(scope="session")
def bot(test_settings):
    from assistant import Assistant

    return Assistant(test_settings)


@pytest.fixture()
def corpus_copy(tmp_path) -> Path:
    """A private, writable copy of the corpus for tests that change documents."""
    dest = tmp_path / "corpus"
    shutil.copytree(CORPUS, dest)
    return dest
