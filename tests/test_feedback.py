"""The feedback store: durable, concurrent writes lose nothing (threads and processes)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant.feedback import FeedbackStore
from assistant.settings import PROJECT_ROOT

CITES = [{"n": 1, "title": "Walk \u201csafely\u201d", "source": "a.md", "section": "Tips", "quote": "Begin with 5 minutes.", "score": 0.6}]


def _writer_processes(db: Path, body: str, args: list[str]) -> list[subprocess.Popen]:
    """Child processes that open ``db`` as ``store`` and run ``body`` (``sys.argv[1]`` is their
    argument). The module is loaded alone: a child needs no model, torch or Chroma."""
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("fb", {str(PROJECT_ROOT / "assistant" / "feedback.py")!r})
        fb = sys.modules["fb"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fb)
        store = fb.FeedbackStore({str(db)!r}, app_version="test")
        """
    ) + textwrap.dedent(body) + "store.close()\n"
    return [subprocess.Popen([sys.executable, "-c", script, a]) for a in args]


def test_creates_parent_folder_schema_and_wal(tmp_path: Path):
    db = tmp_path / "deep" / "er" / "feedback.sqlite3"
    with FeedbackStore(db, app_version="9.9.9") as store:
        row_id = store.add(
            question="Is walking good for back pain?",
            answer="Yes [1].",
            vote="like",
            history_len=2,
            kind="answer",
            citations=CITES,
            safety_level="none",
            comment="helpful",
            session_id="abc",
        )
        row = store.get(row_id)
    assert db.exists()
    assert row["question"] == "Is walking good for back pain?"
    assert row["history_len"] == 2
    assert row["answer"] == "Yes [1]."
    assert row["citations"] == CITES
    assert row["safety_level"] == "none"
    assert row["vote"] == "like"
    assert row["comment"] == "helpful"
    assert row["app_version"] == "9.9.9"
    assert row["created_at"].endswith("+00:00")
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        cols = {r[1] for r in raw.execute("PRAGMA table_info(feedback)")}
    assert {"question", "history_len", "answer", "citations_json", "safety_level", "vote", "comment",
            "created_at", "app_version"} <= cols


def test_default_version_is_the_app_version(tmp_path: Path):
    import assistant

    with FeedbackStore(tmp_path / "f.sqlite3") as store:
        assert store.app_version == assistant.__version__


def test_default_path_is_under_gitignored_data_folder():
    from assistant.settings import Settings

    assert Settings().feedback_db.parent == PROJECT_ROOT / "data"


def test_votes_are_validated_and_comments_attach(tmp_path: Path):
    with FeedbackStore(tmp_path / "f.sqlite3") as store:
        with pytest.raises(ValueError):
            store.add(question="q", answer="a", vote="meh")
        row_id = store.add(question="q", answer="a", vote="Dislike")
        assert store.get(row_id)["vote"] == "dislike"
        assert store.set_comment(row_id, "  it missed the point  ")
        assert store.get(row_id)["comment"] == "  it missed the point  "
        assert not store.set_comment(row_id + 100, "nobody")
        assert store.count() == 1


def test_concurrent_threads_lose_nothing(tmp_path: Path):
    db = tmp_path / "f.sqlite3"
    store = FeedbackStore(db)
    threads, per_thread = 16, 60
    barrier = threading.Barrier(threads)

    def worker(t: int) -> list[int]:
        barrier.wait()
        ids = []
        for i in range(per_thread):
            ids.append(store.add(question=f"q{t}-{i}", answer=f"a{t}-{i}", vote="like" if i % 2 else "dislike",
                                 history_len=i, citations=CITES, comment=f"c{t}-{i}"))
            if i % 10 == 0:
                store.set_comment(ids[-1], f"edited {t}-{i}")
        return ids

    with ThreadPoolExecutor(threads) as pool:
        all_ids = [i for ids in pool.map(worker, range(threads)) for i in ids]
    assert len(all_ids) == len(set(all_ids)) == threads * per_thread
    assert store.count() == threads * per_thread
    store.close()

    # Re-open from disk: everything is durable, and every row holds its own data.
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT question, answer, comment, citations_json FROM feedback").fetchall()
    assert len(rows) == threads * per_thread
    questions = {r[0] for r in rows}
    assert questions == {f"q{t}-{i}" for t in range(threads) for i in range(per_thread)}
    for q, a, c, cj in rows:
        assert a == "a" + q[1:]
        assert c in ("c" + q[1:], "edited " + q[1:])
        assert json.loads(cj) == CITES


def test_concurrent_processes_lose_nothing(tmp_path: Path):
    """Several app processes writing one file (e.g. more than one server worker)."""
    db = tmp_path / "shared" / "f.sqlite3"
    procs, per_proc = 4, 80
    FeedbackStore(db).close()  # create the schema once, as the app does at start
    children = _writer_processes(db, f"""
        p = int(sys.argv[1])
        for i in range({per_proc}):
            store.add(question=f"p{{p}}-{{i}}", answer="a", vote="like")
        """, [str(p) for p in range(procs)])
    # ...while this process writes too
    with FeedbackStore(db) as store:
        for i in range(per_proc):
            store.add(question=f"main-{i}", answer="a", vote="dislike")
    assert [c.wait(timeout=120) for c in children] == [0] * procs
    with sqlite3.connect(db) as raw:
        got = {r[0] for r in raw.execute("SELECT question FROM feedback")}
    expected = {f"p{p}-{i}" for p in range(procs) for i in range(per_proc)} | {f"main-{i}" for i in range(per_proc)}
    assert got == expected


def test_one_row_per_reply_and_voter_updated_in_place(tmp_path: Path):
    with FeedbackStore(tmp_path / "f.sqlite3", app_version="test") as store:
        first = store.add(question="q", answer="a", vote="like", session_id="s1", message_id="m1")
        store.set_comment(first, "helpful")
        again = store.add(question="q", answer="a", vote="dislike", session_id="s1", message_id="m1")
        other_voter = store.add(question="q", answer="a", vote="like", session_id="s2", message_id="m1")
        other_reply = store.add(question="q2", answer="a2", vote="like", session_id="s1", message_id="m2")
        assert again == first and len({first, other_voter, other_reply}) == 3
        assert store.count() == 3
        row = store.get(first)
        assert row["vote"] == "dislike" and row["comment"] == "helpful"
        # rows without a message id (older callers) still append
        store.add(question="q", answer="a", vote="like")
        store.add(question="q", answer="a", vote="like")
        assert store.count() == 5


def test_a_file_from_before_per_reply_votes_is_upgraded(tmp_path: Path):
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as raw:
        raw.executescript(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, question TEXT NOT NULL,"
            " history_len INTEGER NOT NULL DEFAULT 0, answer TEXT NOT NULL, kind TEXT NOT NULL DEFAULT '',"
            " citations_json TEXT NOT NULL DEFAULT '[]', safety_level TEXT NOT NULL DEFAULT 'none',"
            " vote TEXT NOT NULL, comment TEXT NOT NULL DEFAULT '', app_version TEXT NOT NULL DEFAULT '',"
            " session_id TEXT NOT NULL DEFAULT '');"
            "INSERT INTO feedback (created_at, question, answer, vote) VALUES ('t', 'old', 'a', 'like');"
        )
    with FeedbackStore(db, app_version="test") as store:
        store.add(question="q", answer="a", vote="like", session_id="s", message_id="m")
        store.add(question="q", answer="a", vote="dislike", session_id="s", message_id="m")
        assert store.count() == 2 and store.recent()[-1]["question"] == "old"


def test_two_processes_flipping_the_same_vote_leave_one_row(tmp_path: Path):
    """Two server processes, one reply, the same voter clicking in both at the same moment."""
    db = tmp_path / "f.sqlite3"
    FeedbackStore(db).close()
    children = _writer_processes(db, """
        for i in range(100):
            store.add(question="q", answer="a", vote=("like", "dislike")[i % 2], session_id="s", message_id="m")
            store.add(question="q", answer="a", vote="like", session_id=sys.argv[1], message_id=f"own-{i}")
        """, ["p0", "p1"])
    assert [c.wait(timeout=120) for c in children] == [0, 0]
    with sqlite3.connect(db) as raw:
        shared = raw.execute("SELECT COUNT(*) FROM feedback WHERE session_id = 's'").fetchone()[0]
        own = raw.execute("SELECT COUNT(*) FROM feedback WHERE session_id != 's'").fetchone()[0]
    assert shared == 1 and own == 200
