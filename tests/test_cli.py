"""The `backpain` command: index, ask, errors and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from typer.testing import CliRunner

from assistant.cli import app

runner = CliRunner()


def _env(settings) -> dict[str, str]:
    return {
        "BACKPAIN_INDEX_DIR": str(settings.index_dir),
        "BACKPAIN_COLLECTION": settings.collection,
        "BACKPAIN_CORPUS_DIR": str(settings.corpus_dir),
    }


def test_ask_json_in_a_real_process(test_settings):
    env = {**os.environ, **_env(test_settings)}
    proc = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ask", "what shoes should I wear for walking?", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["kind"] == "answer" and data["citations"]
    # quiet by default: no INFO or DEBUG lines from us or from libraries (bm25s, chromadb)
    assert not re.search(r"^(INFO|DEBUG) ", proc.stderr, re.M), proc.stderr
    loud = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ask", "what shoes should I wear for walking?", "--json", "-v"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert re.search(r"^DEBUG ", loud.stderr, re.M)


def test_ask_prints_text_and_sources(test_settings):
    result = runner.invoke(app, ["ask", "is it better to walk on grass or concrete?"], env=_env(test_settings))
    assert result.exit_code == 0, result.output
    assert "[1]" in result.output and ".md)" in result.output


def test_ask_empty_question_exits_non_zero(test_settings):
    result = runner.invoke(app, ["ask", "   "], env=_env(test_settings))
    assert result.exit_code == 2
    assert "empty" in result.output


def test_index_command_is_incremental(tmp_path, corpus_copy):
    env = {"BACKPAIN_INDEX_DIR": str(tmp_path / "idx"), "BACKPAIN_COLLECTION": "cli"}
    first = runner.invoke(app, ["index", str(corpus_copy), "--quiet"], env=env)
    assert first.exit_code == 0, first.output
    assert "5 added" in first.output
    second = runner.invoke(app, ["index", str(corpus_copy), "--quiet"], env=env)
    assert "5 unchanged" in second.output and "0 records added" in second.output


def test_chat_keeps_the_conversation(test_settings):
    result = runner.invoke(
        app, ["chat"], env=_env(test_settings),
        input="what stretches should I do after walking?\nhow long should I hold each one?\n\n",
    )
    assert result.exit_code == 0, result.output
    assert "30 seconds" in result.output
