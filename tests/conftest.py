"""Shared fixtures: the real model, and one real Chroma index built once per test session."""

from __future__ import annotations

import os
import shutil
import socket
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
