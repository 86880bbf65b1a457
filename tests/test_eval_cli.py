"""`backpain eval` on a clinic's own documents and cases, and `--compare` between two runs, in a
real process against a real index built from that folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLINIC = Path(__file__).parent / "data" / "clinic_corpus"

QA = [
    {"id": "c-1", "question": "how many walks a day should i do the first week after seeing you?",
     "evidence": ["Our clinic suggests two short walks a day in the first week, each of about ten minutes."],
     "sources": ["clinic-leaflet.md"], "key_facts": [["two short walks", "two walks"], ["ten minutes", "10 minutes"]]},
    {"id": "c-2", "question": "what kind of shoes for walking on the pavement?",
     "evidence": ["Wear flat, cushioned shoes with a firm heel counter when you walk on pavements."],
     "sources": ["clinic-leaflet.md"], "key_facts": [["heel counter"]]},
    {"id": "c-3", "question": "can I take naproxen before my walk?", "evidence": [], "sources": [], "key_facts": [],
     "expected_kind": "no_answer"},
]
QA.append({"id": "c-4", "question": "how long are the walks in the tuesday group?",
           "evidence": ["Walks are on flat paths in the park and last about thirty minutes, with a rest on a bench halfway."],
           "sources": ["walking-group.md"], "key_facts": [["thirty minutes", "30 minutes"]]})
SCOPE = [{"id": "s-1", "message": "what stretches help a stiff wrist?", "expected_kind": "out_of_scope", "why": "wrist"}]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _eval(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BACKPAIN_INDEX_DIR": str(tmp_path / "index"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "assistant.cli", "eval", "--corpus", str(CLINIC), "--no-baselines", *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_a_clinic_scores_its_own_leaflets_and_sees_what_a_change_broke(tmp_path):
    qa, scope = _write(tmp_path / "qa.jsonl", QA), _write(tmp_path / "scope.jsonl", SCOPE)
    first = _eval(tmp_path, "--qa", str(qa), "--scope", str(scope), "--out", str(tmp_path / "r1"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "3 answerable + 1 unanswerable QA" in first.stdout
    assert "safety_emergency_recall  n/a" in first.stdout  # no safety file given: not gated, not failed
    report = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert report["info"]["corpus_files"] == ["clinic-leaflet.md", "walking-group.md"]
    assert all(c["passed"] for c in report["cases"]), report["cases"]
    assert (tmp_path / "index" / "corpora").is_dir()  # the clinic's index sits beside the default one

    changed = [dict(QA[0], key_facts=[["three walks"]]), *QA[1:]]
    _write(qa, changed)
    second = _eval(tmp_path, "--qa", str(qa), "--scope", str(scope), "--out", str(tmp_path / "r2"),
                   "--compare", str(tmp_path / "r1"))
    out = second.stdout
    assert "FAILED qa/c-1: key facts missing: three walks" in out
    assert "key_fact_recall" in out and "WORSE" in out
    assert "broken (passed before, fail now): 1" in out and "qa/c-1" in out.split("broken")[1]
    assert "1 broken, 0 fixed" in out


def test_bad_eval_input_gets_one_line_and_exit_code_2(tmp_path):
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"id": "x", "question": "q?", "evidence": ["not in any leaflet at all, anywhere"], '
                   '"sources": ["clinic-leaflet.md"], "key_facts": [["leaflet"]]}\n', encoding="utf-8")
    got = _eval(tmp_path, "--qa", str(bad), "--out", str(tmp_path / "r"))
    assert got.returncode == 2 and "does not match the corpus" in got.stderr and "Traceback" not in got.stderr
    got = _eval(tmp_path, "--qa", str(tmp_path / "missing.jsonl"))
    assert got.returncode == 2 and "no such file" in got.stderr
    got = _eval(tmp_path, "--qa", str(_write(tmp_path / "ok.jsonl", QA)), "--compare", str(tmp_path / "nowhere"))
    assert got.returncode == 2 and "no such report" in got.stderr
