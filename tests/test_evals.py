"""The evaluation suite: the data sets, the metric arithmetic, the report, and the quality gate.

The last test runs every eval set through the real ``Assistant`` and fails when any metric falls
below ``evals/thresholds.toml``: that is the CI quality gate.
"""

from __future__ import annotations

import json
import math

import pytest

from assistant.evaluation import (
    DEFAULT_THRESHOLDS,
    EVALS_DIR,
    REGISTRY,
    CaseRecord,
    DatasetError,
    Metric,
    QACase,
    SafetyCase,
    ScopeCase,
    check_thresholds,
    compute_all,
    dataset_counts,
    load_qa,
    load_safety,
    load_scope,
    load_thresholds,
    register,
    run_suite,
    validate_evidence,
)
from assistant.evaluation import matching as m
from assistant.evaluation.datasets import MIN_ANSWERABLE, MIN_MULTI_TURN, MIN_UNANSWERABLE, corpus_texts
from assistant.evaluation.report import case_failures, format_summary, write_report
from assistant.settings import PROJECT_ROOT

CORPUS = PROJECT_ROOT / "corpus"
QA = load_qa(EVALS_DIR / "qa.jsonl")
SCOPE = load_scope(EVALS_DIR / "scope.jsonl")


# ---------------------------------------------------------------- data sets


def test_qa_evidence_occurs_verbatim_in_its_sources():
    assert validate_evidence(QA, CORPUS) == []


def test_qa_counts_meet_the_issue_minimums():
    counts = dataset_counts(QA)
    assert counts["answerable"] >= MIN_ANSWERABLE
    assert counts["unanswerable"] >= MIN_UNANSWERABLE
    assert counts["multi_turn"] >= MIN_MULTI_TURN
    # every article is covered, and not by a token few questions
    assert set(counts["per_source"]) == {p.name for p in CORPUS.glob("*.md")}
    assert min(counts["per_source"].values()) >= 10


def test_ids_are_unique_across_sets():
    ids = [c.id for c in QA] + [c.id for c in SCOPE]
    assert len(ids) == len(set(ids))


def test_questions_are_not_copied_from_the_articles():
    """No question shares a run of 7 words with the corpus: they are paraphrased, as people ask."""
    doc_tokens = [m.tokens(t) for t in corpus_texts(CORPUS).values()]
    grams = {tuple(d[i:i + 7]) for d in doc_tokens for i in range(len(d) - 6)}
    copied = []
    for c in QA:
        t = m.tokens(c.question)
        if any(tuple(t[i:i + 7]) in grams for i in range(len(t) - 6)):
            copied.append(c.id)
    assert copied == []


def test_multi_turn_cases_have_a_user_turn_and_a_short_follow_up():
    multi = [c for c in QA if c.multi_turn]
    for c in multi:
        assert c.history[0]["role"] == "user", c.id
        assert any(t["role"] == "assistant" for t in c.history), c.id
        assert len(m.tokens(c.question)) <= 12, f"{c.id}: a follow-up should lean on the history"


def test_key_facts_are_backed_by_the_evidence():
    """At least one alternative of every key-fact group appears in the case's evidence."""
    for c in QA:
        if not c.answerable:
            continue
        evidence = " ".join(c.evidence)
        for group in c.key_facts:
            assert m.fact_present(evidence, group), f"{c.id}: {group} not in its evidence"


def test_scope_set_covers_every_kind_of_message():
    kinds = {c.expected_kind for c in SCOPE}
    assert {"out_of_scope", "answer", "invalid_input"} <= kinds
    by_id = {c.id: c for c in SCOPE}
    messages = [c.message for c in SCOPE if c.expected_kind == "invalid_input"]
    assert "" in messages and any(not s.strip() and s for s in messages)
    assert any(len(s) > 2000 for s in messages)
    assert sum(1 for c in SCOPE if c.expected_kind == "out_of_scope" and c.id.startswith("off-")) >= 10
    injections = [c for c in SCOPE if c.id.startswith("inj-")]
    assert any(c.expected_kind == "answer" and c.must_not_contain for c in injections)
    assert sum(1 for c in SCOPE if c.id.startswith("lang-") and c.expected_kind == "answer") >= 3
    assert any("<script>" in c.message for c in SCOPE)
    assert all(c.why for c in SCOPE), "every scope case says why it expects what it does"
    assert by_id  # ids unique: load_scope raises otherwise


def test_safety_set_loads_if_present():
    path = EVALS_DIR / "safety.jsonl"
    if not path.is_file():
        pytest.skip("evals/safety.jsonl is written with the safety layer")
    cases = load_safety(path)
    assert {c.expected_level for c in cases} <= {"none", "urgent", "emergency"}
    assert cases


def test_loader_rejects_broken_lines(tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_text('{"id": "a", "question": "q", "evidence": [], "sources": [], "key_facts": []}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="1 to 3 evidence"):
        load_qa(p)
    p.write_text('{"id": "a", "question": "q", "expected_kind": "no_answer"}\n' * 2, encoding="utf-8")
    with pytest.raises(DatasetError, match="duplicate id"):
        load_qa(p)
    p.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="qa.jsonl:1"):
        load_qa(p)


def test_validate_evidence_reports_a_passage_not_in_the_source():
    case = QACase(id="x", question="q", evidence=("Walking on the moon cures everything forever.",),
                  sources=("is-walking-good-for-back-pain.md",), key_facts=(("moon",),))
    problems = validate_evidence([case], CORPUS)
    assert any("not found verbatim" in p for p in problems)


# ---------------------------------------------------------------- matching rules


def test_hit_rule_accepts_the_passage_inside_a_chunk_and_rejects_scattered_words():
    passage = "Begin with 5 to 10 minutes per day and slowly work your way up."
    chunk = "## Tips\n\nWalking is fantastic. Begin with 5 to 10 minutes per day and slowly work your way up. Treadmills help."
    assert m.coverage(passage, chunk) == 1.0
    # a chunk boundary inside the sentence: 10 of 14 tokens (71%) still count, 8 of 14 (57%) do not
    assert m.contains_passage("Tips. Begin with 5 to 10 minutes per day and slowly", passage)
    assert not m.contains_passage("Tips. Begin with 5 to 10 minutes per day", passage)
    # the same words, shuffled, are not a hit
    shuffled = "up your way work slowly and day per minutes 10 to 5 with begin"
    assert m.coverage(passage, shuffled) == 0.0
    assert not m.contains_passage("Begin your day", passage)


def test_tokens_ignore_case_quotes_and_markup():
    assert m.tokens("It’s **Fine** - [1]") == m.tokens("it's fine 1")


def test_rank_metrics_known_values():
    assert m.hit_at_k(1, 1) == 1.0
    assert m.hit_at_k(3, 1) == 0.0 and m.hit_at_k(3, 3) == 1.0
    assert m.hit_at_k(None, 5) == 0.0
    assert m.reciprocal_rank(4) == 0.25 and m.reciprocal_rank(None) == 0.0
    assert m.ndcg_at_k([1]) == 1.0
    assert m.ndcg_at_k([3]) == pytest.approx(0.5)  # 1/log2(4)
    assert m.ndcg_at_k([6]) == 0.0  # outside the top 5
    assert m.ndcg_at_k([1, None]) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert m.ndcg_at_k([2, 1]) == 1.0
    assert m.ndcg_at_k([1, 1]) == 1.0  # one context holding both passages is ideal too


def test_passage_ranks_use_the_first_context_holding_each_passage():
    ctx = ["nothing relevant here at all", "Walking lowers blood pressure and builds stamina", "When you walk your body releases endorphins that help decrease pain."]
    ranks = m.passage_ranks(ctx, ["your body releases endorphins that help decrease pain in your back", "the moon is made of cheese"])
    assert ranks == [3, None]
    assert m.first_relevant_rank(ctx, ["Walking lowers blood pressure"]) == 2


def test_key_facts_match_at_word_starts_and_respect_numbers():
    assert m.fact_present("Start with 5-10 minute walks", ["5", "five"])
    assert not m.fact_present("every 15 minutes", ["5"])
    assert not m.fact_present("about 50 steps", ["5"])
    assert m.fact_present("It helps stabilize the spine", ["stabiliz"])
    assert m.fact_present("2–3 times a day", ["2-3"])
    assert m.fact_present("Thirty Seconds each", ["30 seconds", "thirty seconds"])
    assert m.key_fact_hits("hold for 30 seconds", [["30 seconds"], ["two to three", "2-3"]]) == [True, False]


def test_marked_sentences_find_the_sentence_of_each_marker():
    text = "Walking helps [1]. It also lifts your mood.[2][3]\n- [4] Stretch after walks."
    assert m.marked_sentences(text) == [
        (1, "Walking helps"),
        (2, "It also lifts your mood."),
        (3, "It also lifts your mood."),
        (4, "Stretch after walks."),
    ]


def test_percentile_matches_linear_interpolation():
    assert m.percentile([1, 2, 3, 4], 50) == 2.5
    assert m.percentile([10.0], 95) == 10.0
    assert m.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert m.percentile([], 50) is None


# ---------------------------------------------------------------- metrics on hand-made results

QA_CASE = QACase(
    id="q1", question="how long should i walk at first",
    evidence=("Begin with 5 to 10 minutes per day and slowly work your way up.",),
    sources=("is-walking-good-for-back-pain.md",), key_facts=(("5", "five"), ("10", "ten")),
)
MT_CASE = QACase(
    id="q2", question="how long do I hold them?",
    evidence=("hold each stretch for at least 30 seconds and repeat each stretch two to three times",),
    sources=("walking-as-a-key-element-of-back-pain-exercises.md",), key_facts=(("30 seconds",),),
    history=({"role": "user", "content": "what stretches after a walk?"},),
)
NA_CASE = QACase(id="q3", question="ibuprofen dose?", evidence=(), sources=(), key_facts=(), expected_kind="no_answer")


def ctx(text: str) -> dict:
    return {"source": "s.md", "title": "t", "section": "sec", "text": text, "score": 0.5}


def records() -> list[CaseRecord]:
    good = {
        "kind": "answer",
        "text": "Begin with 5 to 10 minutes per day [1]. Walking is good for your heart [2].",
        "citations": [
            {"n": 1, "quote": "Begin with 5 to 10 minutes per day and slowly work your way up.", "source": "s.md"},
            {"n": 2, "quote": "Treadmills are smooth.", "source": "s.md"},
        ],
        "safety": {"level": "none", "reasons": []},
        "contexts": [ctx("Treadmills are smooth."), ctx("Tips. Begin with 5 to 10 minutes per day and slowly work your way up.")],
    }
    missed = {
        "kind": "answer",
        "text": "Stretch your hips [1].",
        "citations": [{"n": 1, "quote": "Stretch your hips and legs.", "source": "s.md"}],
        "safety": {"level": "none", "reasons": []},
        "contexts": [ctx("a"), ctx("b"), ctx("c"), ctx("It's essential to hold each stretch for at least 30 seconds and repeat each stretch two to three times.")],
    }
    declined = {"kind": "no_answer", "text": "I can't find that.", "citations": [], "safety": {"level": "none"}, "contexts": []}
    return [
        CaseRecord("qa", QA_CASE, good, latency_ms=100.0),
        CaseRecord("qa", MT_CASE, missed, latency_ms=300.0),
        CaseRecord("qa", NA_CASE, declined, latency_ms=200.0),
        CaseRecord("scope", ScopeCase("s1", "write a poem", "out_of_scope", "off topic", ("roses",)),
                   {"kind": "out_of_scope", "text": "Roses are red"}, latency_ms=50.0),
        CaseRecord("scope", ScopeCase("s2", "", "invalid_input", "empty"), {"kind": "invalid_input", "text": ""}, latency_ms=10.0),
        CaseRecord("safety", SafetyCase("f1", "numb bum", "emergency"), {"kind": "red_flag", "safety": {"level": "emergency"}}, latency_ms=20.0),
        CaseRecord("safety", SafetyCase("f2", "tingly legs", "urgent"), {"kind": "red_flag", "safety": {"level": "emergency"}}, latency_ms=20.0),
        CaseRecord("safety", SafetyCase("f3", "sore back", "none"), {"kind": "answer", "safety": {"level": "urgent"}}, latency_ms=20.0),
        CaseRecord("safety", SafetyCase("f4", "stiff back", "none"), {"kind": "answer", "safety": {"level": "none"}}, latency_ms=20.0),
    ]


def test_metrics_on_hand_made_results():
    got = compute_all(records())
    assert got["hit@1"] == 0.0          # evidence at rank 2 and rank 4
    assert got["hit@3"] == 0.5
    assert got["hit@5"] == 1.0
    assert got["mrr"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert got["ndcg@5"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / 2)
    assert got["multiturn_hit@3"] == 0.0
    assert got["citation_evidence_rate"] == 0.5   # q1 cites the evidence, q2 does not
    assert got["citation_precision"] == pytest.approx(2 / 3)  # "Walking is good for your heart" vs "Treadmills are smooth."
    assert got["key_fact_recall"] == 0.5   # q1 both groups, q2 none
    assert got["answered_rate"] == 1.0
    assert got["decline_rate"] == 1.0
    assert got["scope_accuracy"] == 0.5    # s1 has the forbidden "roses"
    assert got["safety_emergency_recall"] == 1.0
    assert got["safety_urgent_recall"] == 1.0   # emergency counts for urgent
    assert got["safety_none_fp_rate"] == 0.5
    assert got["safety_level_accuracy"] == 0.5
    assert got["latency_p50_ms"] == 20.0
    assert got["errors"] == 0.0


def test_failed_cases_say_why():
    recs = {r.case.id: r for r in records()}
    assert case_failures(recs["q1"]) == ["citation markers not supported by their quote: [2]"]
    reasons = case_failures(recs["q2"])
    assert "evidence only at rank 4" in reasons
    assert any(r.startswith("key facts missing") for r in reasons)
    assert "no cited quote contains an evidence passage" in reasons
    assert case_failures(recs["q3"]) == []
    assert case_failures(recs["f3"]) == ["expected safety level none, got urgent"]
    assert case_failures(recs["f2"]) == []


def test_thresholds_are_minimums_or_maximums_by_metric_direction():
    checks = {c.metric: c for c in check_thresholds(
        {"hit@3": 0.7, "latency_p95_ms": 900.0, "safety_none_fp_rate": 0.3, "mrr": None},
        {"hit@3": 0.7, "latency_p95_ms": 800.0, "safety_none_fp_rate": 0.5, "mrr": 0.1},
    )}
    assert checks["hit@3"].passed and checks["hit@3"].direction == "min"
    assert not checks["latency_p95_ms"].passed and checks["latency_p95_ms"].direction == "max"
    assert checks["safety_none_fp_rate"].passed
    assert not checks["mrr"].passed  # a gated metric that was not computed fails


def test_thresholds_file_names_only_registered_metrics(tmp_path):
    limits = load_thresholds(DEFAULT_THRESHOLDS)
    assert limits and set(limits) <= set(REGISTRY)
    bad = tmp_path / "t.toml"
    bad.write_text('[thresholds]\n"hit@7" = 0.5\n', encoding="utf-8")
    with pytest.raises(ValueError, match="hit@7"):
        load_thresholds(bad)


def test_adding_a_metric_is_one_small_class():
    @register
    class ShortAnswers(Metric):
        name = "test_short_answers"
        group = "answers"
        description = "answers under 50 words"

        def available(self, context):
            return context.get("enabled", True)

        def compute(self, cases):
            vals = [1.0 if len(c.text.split()) < 50 else 0.0 for c in cases if c.kind == "answer"]
            return sum(vals) / len(vals) if vals else None

    try:
        assert compute_all(records())["test_short_answers"] == 1.0
        assert "test_short_answers" not in compute_all(records(), {"enabled": False})
    finally:
        del REGISTRY["test_short_answers"]


# ---------------------------------------------------------------- the runner and report, with an oracle


def oracle(question, history=None):
    """Returns exactly what the data sets expect: every metric must come out perfect."""
    case = ORACLE[(question, json.dumps(history or []))]
    if isinstance(case, QACase):
        if not case.answerable:
            return {"kind": "no_answer", "text": "Not in my sources.", "citations": [], "safety": {"level": "none"}, "contexts": []}
        text = " ".join(f"{e} [{i}]" for i, e in enumerate(case.evidence, start=1))
        return {
            "kind": "answer",
            "text": text + " " + " ".join(a[0] for g in case.key_facts for a in [g]),
            "citations": [{"n": i, "quote": e, "source": case.sources[0]} for i, e in enumerate(case.evidence, start=1)],
            "safety": {"level": "none", "reasons": []},
            "contexts": [ctx(e) for e in case.evidence],
        }
    if isinstance(case, ScopeCase):
        return {"kind": case.expected_kind, "text": "", "safety": {"level": "none"}, "contexts": []}
    return {"kind": "answer", "text": "", "safety": {"level": case.expected_level}, "contexts": []}


ORACLE: dict = {}


def test_run_suite_with_an_oracle_scores_perfectly_and_writes_the_report(tmp_path):
    data = tmp_path / "evals"
    data.mkdir()
    for name in ("qa.jsonl", "scope.jsonl"):
        (data / name).write_text((EVALS_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    (data / "safety.jsonl").write_text(
        "\n".join(json.dumps({"id": f"s{i}", "message": f"vignette {i}", "expected": lvl})
                  for i, lvl in enumerate(["none", "urgent", "emergency", "none"])) + "\n", encoding="utf-8")
    qa, scope, safety = load_qa(data / "qa.jsonl"), load_scope(data / "scope.jsonl"), load_safety(data / "safety.jsonl")
    ORACLE.clear()
    for c in [*qa, *scope, *safety]:
        ORACLE[(c.prompt, json.dumps(list(c.history)))] = c
    ORACLE[("is walking good for back pain?", "[]")] = scope[0]

    run = run_suite(oracle, data_dir=data, corpus_dir=CORPUS, baselines=False, thresholds=DEFAULT_THRESHOLDS)
    for name, value in run.metrics.items():
        if REGISTRY[name].group in ("latency",):
            continue
        want = 0.0 if not REGISTRY[name].higher_is_better else 1.0
        assert value == pytest.approx(want), name
    assert run.passed, [c.metric for c in run.failed_checks]

    paths = write_report(run, tmp_path / "report")
    for key in ("md", "json", "metrics_png", "latency_png", "safety_png"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    report = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert report["passed"] is True and report["metrics"]["hit@3"]["value"] == 1.0
    md = paths["md"].read_text(encoding="utf-8")
    assert "## Failed cases (0)" in md
    assert "hit@3" in format_summary(run)


# ---------------------------------------------------------------- the quality gate


def test_quality_gate_real_assistant_meets_the_thresholds(bot, test_settings, embedder, tmp_path):
    """Every eval set through the real Assistant; fails when any metric drops under its threshold.
    The report is written to a temporary folder; its path is in the failure message."""
    run = run_suite(
        bot.answer,
        corpus_dir=test_settings.corpus_dir,
        baselines=True,
        embedder=embedder,
        thresholds=DEFAULT_THRESHOLDS,
    )
    paths = write_report(run, tmp_path / "report")
    failed = [f"{c.metric}={c.value} (threshold {c.limit})" for c in run.failed_checks]
    assert not failed, f"quality regression: {', '.join(failed)}; see {paths['md']}\n{format_summary(run)}"
    # the project's retrieval should beat both baselines on the same questions
    for name, b in run.baselines.items():
        assert run.metrics["hit@3"] > b["metrics"]["hit@3"], f"hit@3 not ahead of {name}"
