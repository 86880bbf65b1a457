"""Durable store for the like / dislike votes people leave on replies.

One SQLite file (``settings.feedback_db``, default ``data/feedback.sqlite3``) in WAL mode.
Each thread gets its own connection (``threading.local``); a process-wide lock serialises
writes so many users voting at once never trip over ``database is locked`` and lose nothing.
Other processes writing the same file are covered by SQLite's own locking plus a generous
``busy_timeout``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Literal

Vote = Literal["like", "dislike"]
VOTES: tuple[str, ...] = ("like", "dislike")
MAX_COMMENT_CHARS = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      TEXT    NOT NULL,            -- ISO-8601 UTC timestamp
    question        TEXT    NOT NULL,
    history_len     INTEGER NOT NULL DEFAULT 0,  -- earlier messages sent with the question
    answer          TEXT    NOT NULL,
    kind            TEXT    NOT NULL DEFAULT '',
    citations_json  TEXT    NOT NULL DEFAULT '[]',
    safety_level    TEXT    NOT NULL DEFAULT 'none',
    vote            TEXT    NOT NULL CHECK (vote IN ('like', 'dislike')),
    comment         TEXT    NOT NULL DEFAULT '',
    app_version     TEXT    NOT NULL DEFAULT '',
    session_id      TEXT    NOT NULL DEFAULT '',
    message_id      TEXT    NOT NULL DEFAULT ''  -- the reply voted on; one row per reply and voter
);
CREATE INDEX IF NOT EXISTS feedback_created_at ON feedback (created_at);
"""
# one vote per reply and voter: a second click changes the row instead of adding one
UNIQUE_VOTE = """
CREATE UNIQUE INDEX IF NOT EXISTS feedback_one_vote
    ON feedback (session_id, message_id) WHERE message_id != '';
"""

COLUMNS = (
    "id", "created_at", "question", "history_len", "answer", "kind", "citations_json",
    "safety_level", "vote", "comment", "app_version", "session_id", "message_id",
)


def _app_version() -> str:
    try:
        from assistant import __version__  # type: ignore[attr-defined]

        return str(__version__)
    except Exception:  # the package may still be importing, or not expose it yet
        try:
            from importlib.metadata import version

            return version("backpain-assistant")
        except Exception:
            return "unknown"


@dataclass
class FeedbackRecord:
    question: str
    answer: str
    vote: str
    history_len: int = 0
    kind: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    safety_level: str = "none"
    comment: str = ""
    session_id: str = ""
    message_id: str = ""


class FeedbackStore:
    """Thread- and process-safe store of votes: one row per reply and voter."""

    def __init__(self, path: str | Path, app_version: str | None = None, timeout_s: float = 30.0):
        self.path = Path(path)
        self.app_version = app_version if app_version is not None else _app_version()
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._write_lock:
            conn = self._conn()
            conn.executescript(SCHEMA)
            columns = {r[1] for r in conn.execute("PRAGMA table_info(feedback)")}
            if "message_id" not in columns:  # a file written before votes were per reply
                conn.execute("ALTER TABLE feedback ADD COLUMN message_id TEXT NOT NULL DEFAULT ''")
            conn.executescript(UNIQUE_VOTE)

    # -- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                str(self.path), timeout=self._timeout_s, isolation_level=None, check_same_thread=True
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this store opened (call once at shutdown / end of a test)."""
        with self._conns_lock:
            conns, self._all_conns = self._all_conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.ProgrammingError:
                # Opened in another thread: sqlite3 refuses to close it from here; it is
                # released when that thread's connection object is garbage collected.
                pass
        self._local = threading.local()

    # -- writes --------------------------------------------------------------------------
    def add(
        self,
        *,
        question: str,
        answer: str,
        vote: str,
        history_len: int = 0,
        kind: str = "",
        citations: Iterable[dict[str, Any]] | None = None,
        safety_level: str = "none",
        comment: str = "",
        session_id: str = "",
        message_id: str = "",
    ) -> int:
        """Store one vote and return its row id. With a ``message_id``, a later vote by the same
        session on the same reply updates that row in place (its comment is kept)."""
        vote = _normalise_vote(vote)
        row = (
            datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            str(question),
            int(history_len),
            str(answer),
            str(kind),
            json.dumps(list(citations or []), ensure_ascii=False),
            str(safety_level or "none"),
            vote,
            str(comment or "")[:MAX_COMMENT_CHARS],
            self.app_version,
            str(session_id or ""),
            str(message_id or ""),
        )
        sql = (
            "INSERT INTO feedback (created_at, question, history_len, answer, kind, citations_json,"
            " safety_level, vote, comment, app_version, session_id, message_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (session_id, message_id) WHERE message_id != ''"
            " DO UPDATE SET vote = excluded.vote, created_at = excluded.created_at RETURNING id"
        )
        return self._write(sql, row)

    def add_record(self, rec: FeedbackRecord) -> int:
        return self.add(
            question=rec.question, answer=rec.answer, vote=rec.vote, history_len=rec.history_len,
            kind=rec.kind, citations=rec.citations, safety_level=rec.safety_level,
            comment=rec.comment, session_id=rec.session_id, message_id=rec.message_id,
        )

    def set_comment(self, row_id: int, comment: str) -> bool:
        """Attach (or replace) the optional comment on a row written earlier."""
        cur_rows = self._write_rowcount(
            "UPDATE feedback SET comment = ? WHERE id = ?",
            (str(comment or "")[:MAX_COMMENT_CHARS], int(row_id)),
        )
        return cur_rows > 0

    def _write(self, sql: str, params: tuple) -> int:
        for attempt in range(5):
            try:
                with self._write_lock:
                    conn = self._conn()
                    return int(conn.execute(sql, params).fetchone()[0])  # the statement ends RETURNING id
            except sqlite3.OperationalError as exc:  # another *process* held the lock too long
                if "locked" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise RuntimeError("unreachable")

    def _write_rowcount(self, sql: str, params: tuple) -> int:
        with self._write_lock:
            cur = self._conn().execute(sql, params)
            return cur.rowcount

    # -- reads ---------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def get(self, row_id: int) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM feedback WHERE id = ?", (int(row_id),)).fetchone()
        return _row_dict(row) if row else None

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT * FROM feedback ORDER BY id DESC LIMIT ?", (int(limit),)
        ).fetchall()
        return [_row_dict(r) for r in rows]

    def __enter__(self) -> "FeedbackStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _normalise_vote(vote: Any) -> str:
    v = str(vote).strip().lower()
    aliases = {"liked": "like", "up": "like", "true": "like", "1": "like",
               "disliked": "dislike", "down": "dislike", "false": "dislike", "0": "dislike"}
    v = aliases.get(v, v)
    if v not in VOTES:
        raise ValueError(f"vote must be 'like' or 'dislike', not {vote!r}")
    return v


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["citations"] = json.loads(d.pop("citations_json") or "[]")
    return d
