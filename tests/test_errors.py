"""Every failure a person can meet ends in one line that says what to do and a documented exit
code, never a traceback: the bad-input and fault matrix of the CLI and of ``Assistant``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.errors import CorpusError, ReadOnlyIndex, StoreError, StoreUnavailable, UsageError

from conftest import CORPUS, free_port


@pytest.fixture
def backpain(capsys, monkeypatch):
    """Runs the real ``backpain`` entry point in-process: (exit code, stdout, stderr)."""
    def run(*args: str, **env: str) -> tuple[int, str, str]:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setattr(sys, "argv", ["backpain", *args])
        with pytest.raises(SystemExit) as ended:
            main()
        out = capsys.readouterr()
        assert "Traceback" not in out.err and "Traceback" not in out.out, out.err
        return ended.value.code, out.out, out.err

    return run


def _unreadable(folder):
    folder.mkdir()
    (folder / "a.md").write_bytes(b"\x00\x01\x02 binary")
    (folder / "b.txt").write_bytes(b"\xff\xfe not utf-8")
    return folder


def test_an_empty_corpus_folder(tmp_path, backpain):
    (tmp_path / "docs").mkdir()
    env = {"BACKPAIN_CORPUS_DIR": str(tmp_path / "docs"), "BACKPAIN_INDEX_DIR": str(tmp_path / "i")}
    code, _, err = backpain("ask", "is walking good for my back?", **env)
    assert code == CorpusError.exit_code and "index is empty" in err and "backpain index" in err
    code, _, err = backpain("index", str(tmp_path / "docs"), "-q", **env)
    assert code == CorpusError.exit_code and "no readable documents" in err


def test_a_folder_of_unreadable_files(tmp_path, backpain):
    docs = _unreadable(tmp_path / "docs")
    env = {"BACKPAIN_CORPUS_DIR": str(docs), "BACKPAIN_INDEX_DIR": str(tmp_path / "i")}
    code, _, err = backpain("index", str(docs), "-q", **env)
    assert code == CorpusError.exit_code
    assert "skipped: a.md: binary file" in err and "skipped: b.txt: not valid UTF-8" in err
    code, _, err = backpain("ask", "is walking good for my back?", **env)
    assert code == CorpusError.exit_code and "no readable document" in err


def test_a_missing_corpus_folder(tmp_path, backpain):
    env = {"BACKPAIN_CORPUS_DIR": str(tmp_path / "nope"), "BACKPAIN_INDEX_DIR": str(tmp_path / "i")}
    code, _, err = backpain("ask", "is walking good for my back?", **env)
    assert code == CorpusError.exit_code and "corpus folder not found" in err and "BACKPAIN_CORPUS_DIR" in err
    code, _, err = backpain("index", str(tmp_path / "nope"))
    assert code == UsageError.exit_code and "not a folder" in err


def test_a_chroma_server_that_is_down(backpain):
    code, _, err = backpain("ask", "is walking good for my back?", "--chroma-host", "127.0.0.1",
                            "--chroma-port", str(free_port()))
    assert code == StoreUnavailable.exit_code
    assert "does not answer" in err and "chroma run" in err and "BACKPAIN_CHROMA_HOST" in err


def test_a_corrupt_index_says_rebuild_and_the_rebuild_recovers(tmp_path, test_settings, backpain):
    index = tmp_path / "index"
    shutil.copytree(test_settings.index_dir, index)
    (index / "chroma.sqlite3").write_text("this is not a database")
    (index / "models").mkdir(exist_ok=True)
    (index / "models" / "keep.txt").write_text("not Chroma's: the rebuild leaves it")
    env = {"BACKPAIN_COLLECTION": test_settings.collection, "BACKPAIN_CORPUS_DIR": str(CORPUS)}
    code, _, err = backpain("ask", "is walking good for my back?", "--index-dir", str(index), **env)
    assert code == StoreError.exit_code and "backpain index --rebuild" in err
    code, out, err = backpain("index", "--index-dir", str(index), "--rebuild", "-q", **env)
    assert code == 0, err
    assert "full rebuild" in out
    assert (index / "models" / "keep.txt").exists()
    code, out, _ = backpain("ask", "is walking good for my back?", "--index-dir", str(index), **env)
    assert code == 0 and "[1]" in out


def _as_reader(cmd: list[str]) -> list[str]:
    """Root may write anywhere, so as root the command runs as `nobody`, who may only read."""
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]


def test_a_read_only_index_folder_says_so_and_nothing_is_removed(test_settings):
    """A folder this process may not write to gets one line that says so, from every command,
    and `index --rebuild` removes nothing from it (rebuilding cannot help there)."""
    root = Path(tempfile.mkdtemp(prefix="backpain-ro-"))
    try:
        index = root / "index"
        shutil.copytree(test_settings.index_dir, index)
        before = sorted(p.relative_to(index) for p in index.rglob("*"))
        for path in [root, *index.rglob("*"), index]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        env = {**os.environ, "HOME": str(root), "BACKPAIN_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1",
               "BACKPAIN_COLLECTION": test_settings.collection, "BACKPAIN_CORPUS_DIR": str(CORPUS)}
        for args in (["ask", "is walking good for my back?"], ["index", "-q"], ["index", "--rebuild", "-q"]):
            proc = subprocess.run(_as_reader([sys.executable, "-m", "assistant.cli", *args]), env=env,
                                  capture_output=True, text=True, timeout=300, cwd=root)
            assert proc.returncode == ReadOnlyIndex.exit_code, (args, proc.stderr)
            assert "Traceback" not in proc.stderr
            assert "read-only" in proc.stderr and "BACKPAIN_INDEX_DIR" in proc.stderr, proc.stderr
            assert "--rebuild" not in proc.stderr, "a rebuild cannot help a read-only folder"
        assert sorted(p.relative_to(index) for p in index.rglob("*")) == before
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root)


def test_an_index_left_half_built_is_repaired_when_the_assistant_loads(tmp_path, test_settings):
    """A build killed part-way leaves windows without their sentences; ``Assistant`` (the Python
    API, which does not sync by default) notices on load and repairs it from the corpus."""
    from assistant import Assistant
    from assistant.store import Store

    settings = test_settings.model_copy(update={"index_dir": tmp_path / "index"})
    shutil.copytree(test_settings.index_dir, settings.index_dir)
    store = Store(settings)
    col = store.collection(create=False)
    sentences = col.get(where={"kind": "sentence"}, include=[])["ids"]
    col.delete(ids=sentences[: len(sentences) // 3])
    assert store.load_records().problems()
    bot = Assistant(settings)
    assert not Store(settings).load_records().problems()
    assert bot.answer("is walking good for lower back pain?").kind == "answer"


def test_the_python_api_raises_the_same_typed_errors(tmp_path, test_settings):
    from assistant import Assistant, BackpainError

    settings = test_settings.model_copy(update={"index_dir": tmp_path / "i", "corpus_dir": tmp_path / "none"})
    with pytest.raises(CorpusError) as err:
        Assistant(settings, ensure_index=True)
    assert isinstance(err.value, BackpainError) and "corpus folder not found" in str(err.value)
