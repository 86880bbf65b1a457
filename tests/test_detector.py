"""The learned red-flag detector: its training data, deterministic training, scoping and the
"unsure" tier. Figures on held-out messages are in benchmarks/safety.py, not here."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from assistant.safety import SafetyScreen, load_rules, red_flag_reply
from assistant.safety.detector import EXAMPLES_DIR, HARD_NEGATIVE_KINDS, load_examples, train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def screen() -> SafetyScreen:
    from assistant.embeddings import get_embedder

    return SafetyScreen(get_embedder())


@pytest.fixture(scope="module")
def detector_only(screen):
    screen.parts = frozenset({"detector"})
    screen.set_thresholds(screen.thresholds)
    yield screen
    screen.parts = frozenset({"rules", "detector"})
    screen.set_thresholds(screen.thresholds)


def test_training_set_is_broad():
    examples = load_examples(EXAMPLES_DIR, {c.id for c in load_rules().concepts})
    assert len(examples) >= 2000
    hard = [e for e in examples if e.level == "none" and e.kind in HARD_NEGATIVE_KINDS]
    assert len(hard) >= 800, len(hard)
    levels = Counter(e.level for e in examples)
    assert levels["emergency"] >= 500 and levels["urgent"] >= 300, levels
    registers = Counter(e.register for e in examples)
    for register in ("text_message", "older_writer", "non_native", "third_person", "typos", "long_story"):
        assert registers[register] >= 50, registers
    # every red-flag concept of the rules that the detector can name has examples
    categories = {e.category for e in examples if e.level != "none"}
    assert {"saddle_numbness", "aortic_aneurysm", "cardiorespiratory", "infection_with_fever", "major_trauma",
            "kidney_infection", "night_pain", "no_improvement"} <= categories
    assert len({e.text.lower() for e in examples}) > 0.97 * len(examples), "near-copies in the training set"


def test_every_training_concept_cites_its_source():
    for path in sorted(EXAMPLES_DIR.glob("*.toml")):
        blocks = re.split(r"^\[\[concept\]\]\s*$", path.read_text(encoding="utf-8"), flags=re.M)[1:]
        assert blocks, path
        for block in blocks:
            head = block.split("[concept.examples]")[0]
            assert re.search(r"^#\s*Source:\s*\S", head, re.M), f"{path.name}: a concept has no '# Source:' line\n{head[:200]}"


def test_no_eval_message_is_copied_into_the_training_set():
    import json

    examples = {" ".join(e.text.lower().split()) for e in load_examples()}
    for path in [ROOT / "evals" / "safety.jsonl", *sorted((ROOT / "evals" / "blind").glob("*/safety.jsonl"))]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                message = " ".join(json.loads(line)["message"].lower().split())
                assert message not in examples, (path.name, message)


def test_no_fitted_model_is_kept_in_git():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if f.endswith((".pkl", ".pickle", ".joblib", ".npy", ".npz"))]


def test_training_is_deterministic(screen):
    examples = screen.detector.examples
    one = train(screen.embedder, screen.analyser, examples)
    two = train(screen.embedder, screen.analyser, examples)
    assert all(np.array_equal(getattr(one, k), getattr(two, k)) for k in ("w1", "b1", "w2", "b2"))


def test_fitted_weights_are_cached_and_reloaded_without_training(screen, tmp_path, monkeypatch):
    from assistant.safety import detector as det

    model = det._models[screen.detector.version]
    path = tmp_path / "weights.npz"
    model.save(path)
    loaded = det._Model.load(path)
    x = screen.embedder.encode(["my back aches after gardening", "I can't feel anything when I wipe"])
    assert np.array_equal(model.probabilities(x), loaded.probabilities(x))
    assert list(loaded.positive_categories) == list(model.positive_categories)
    # a new screen in a fresh process state loads the cached weights instead of training
    monkeypatch.setattr(det, "_models", {})
    monkeypatch.setattr(det, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained again")))
    again = SafetyScreen(screen.embedder)
    assert again.detector.version == screen.detector.version


def test_a_broken_examples_file_fails_loudly(tmp_path):
    (tmp_path / "bad.toml").write_text('[[concept]]\nid = "x"\nlevel = "severe"\n[concept.examples]\nplain = ["a"]\n')
    with pytest.raises(ValueError, match="level"):
        load_examples(tmp_path)
    (tmp_path / "bad.toml").write_text(
        '[[concept]]\nid = "x"\nlevel = "urgent"\ncategory = "nope"\n[concept.examples]\nplain = ["a"]\n'
    )
    with pytest.raises(ValueError, match="category"):
        load_examples(tmp_path, {"saddle_numbness"})


@pytest.mark.parametrize(
    "message",
    [
        "i use heroin and my back is agony, i'm boiling hot and shaking",
        "my husband is 70 and a smoker, he has sudden terrible pain in his back and his belly is throbbing",
    ],
)
def test_detector_alone_raises_an_emergency(detector_only, message):
    res = detector_only.assess(message)
    assert res.level == "emergency", res
    assert all(r.detector == "learned" for r in res.reasons) and res.reasons


@pytest.mark.parametrize(
    "message",
    [
        "is walking every day good for my lower back ache?",
        "years ago I couldn't feel anything when I wiped after my back op, that has long gone and I'm fine",
        "I have no numbness down below and my bladder is working normally",
        "what actually is cauda equina syndrome?",
    ],
)
def test_detector_alone_keeps_ordinary_negated_past_and_educational_messages_at_none(detector_only, message):
    assert detector_only.assess(message).level == "none"


def test_unsure_adds_the_emergency_signs_to_an_urgent_reply(screen):
    message = "I had breast cancer a few years ago and my back has started aching most nights"
    plain = screen.assess(message)
    assert plain.level == "urgent", plain
    p = float(screen.detector.probabilities(screen.sentences(message))[:, 2].max())
    nearly = dataclasses.replace(screen.thresholds, safety_emergency=max(p + 0.01, screen.thresholds.safety_emergency),
                                 safety_unsure=p - 0.01)
    original = screen.thresholds
    try:
        screen.set_thresholds(nearly)
        res = screen.assess(message)
        screen.set_thresholds(dataclasses.replace(nearly, safety_unsure=p + 0.005))
        sure = screen.assess(message)
    finally:
        screen.set_thresholds(original)
    assert res.level == "urgent" and res.unsure, res
    assert sure.level == "urgent" and not sure.unsure
    reply = red_flag_reply(res)
    assert "Check these now" in reply and "A&E" in reply and "between your legs" in reply
    assert "Check these now" not in red_flag_reply(sure)


def test_thresholds_file_names_the_detector_cut_offs():
    table = tomllib.loads((ROOT / "assistant" / "data" / "model_thresholds.toml").read_text())
    for key in ("minilm", "mpnet"):
        assert set(table[key]["safety"]) == {"emergency", "any_level", "unsure", "support", "margin"}


@pytest.mark.parametrize("cut_off, opened, closed", [
    # the nearest red-flag example must be this close (cosine): 1.01 is closer than anything
    ("safety_support", 0.0, 1.01),
    # ...and nearer than every ordinary message and clause by this margin: +2 is more than any
    ("safety_margin", -2.0, 2.0),
])
def test_the_detector_cut_offs_decide_what_it_raises(screen, cut_off, opened, closed):
    """With the cut-off open the detector alone raises the message, shut it raises nothing, and the
    shipped value raises it: the cut-off is what decides."""
    message = "since this morning I cannot feel the toilet paper when I wipe and my back is agony"
    original = screen.thresholds
    try:
        screen.parts = frozenset({"detector"})
        screen.set_thresholds(dataclasses.replace(original, **{cut_off: opened}))
        open_ = screen.assess(message)
        screen.set_thresholds(dataclasses.replace(original, **{cut_off: closed}))
        shut = screen.assess(message)
        screen.set_thresholds(original)
        default = screen.assess(message)
    finally:
        screen.parts = frozenset({"rules", "detector"})
        screen.set_thresholds(original)
    assert open_.level == "emergency", open_
    assert shut.level == "none" and not shut.reasons, shut
    assert default.level == "emergency", default


def test_the_ordinary_lookalikes_are_ordinary_messages_and_their_clauses(screen):
    """The margin compares with ordinary and exertion examples only: hard negatives share a red
    flag's words ("no numbness down there") and the rules' scoping handles them."""
    from assistant.safety.detector import LOOKALIKE_KINDS

    model = screen.detector._model
    kinds = {e.kind for e in screen.detector.examples if e.level == "none"}
    assert LOOKALIKE_KINDS < kinds
    n_messages = sum(1 for e in screen.detector.examples if e.kind in LOOKALIKE_KINDS)
    assert model.lookalikes.shape[0] == model.positives.shape[0]
    assert model.lookalikes.shape[1] > n_messages  # their clauses too


def test_a_sentence_of_several_clauses_is_scored_whole(screen):
    """A sign split by a clause break ("wiping ... and I couldn't feel the paper") is embedded as its
    sentence too, and scoped through its strongest clause."""
    a = screen.analyse("Back's been bad since Saturday. Wiping after the loo this morning, and I couldn't "
                       "really feel the paper. Is that normal?")
    assert len(a.unit_texts) >= 3
    assert any("wiping" in t and "paper" in t for t in a.sentence_texts), a.sentence_texts
    for (lo, hi), text in zip(a.sentence_units, a.sentence_texts):
        assert 0 <= lo < hi <= len(a.units) and hi - lo >= 2
    assert screen.sentences(a.original) == [*a.unit_texts, *a.sentence_texts, a.message_text]


def test_the_red_flag_clause_of_a_long_example_is_taught_and_an_ordinary_lookalike_is_not(screen):
    """A long red-flag example teaches its red-flag clause; a clause that reads like an ordinary
    one ("my back is in agony") is never taught as a red flag, even inside a red-flag example."""
    from assistant.safety.detector import LEVELS, Example, _red_flag_clauses

    def ex(text: str, level: str, concept: str) -> Example:
        return Example(text, level, concept, "saddle_numbness" if level != "none" else "", "x", "plain", "t")

    examples = [
        ex("I moved a wardrobe on Sunday and my back is in agony, and since this morning I can't feel "
           "the paper when I wipe", "emergency", "saddle"),
        ex("my bottom and the inside of my thighs feel dead to the touch", "emergency", "saddle"),
        ex("the area between my legs has gone numb since lunch", "emergency", "saddle"),
        ex("my back is in agony, it's the worst it has been", "none", "ordinary"),
        ex("I pulled it gardening and my back is in agony", "none", "ordinary"),
    ]
    prepared = [screen.analyser.prepare(e.text) for e in examples]
    texts = [a.message_text or a.unit_texts[0] for a in prepared]
    ordinary_units = {u for e, a in zip(examples, prepared) if e.level == "none" for u in a.unit_texts}
    pieces = sorted(ordinary_units - set(texts))
    labels = np.asarray([LEVELS.index(e.level) for e in examples])
    messages = screen.embedder.encode_uncached(texts)
    x, y = _red_flag_clauses(screen.embedder, examples, prepared, labels, ordinary_units, messages,
                             screen.embedder.encode_uncached(pieces))
    assert list(y) == [2]
    wipe = [u for u in prepared[0].unit_texts if "wipe" in u]
    assert np.allclose(x[0], screen.embedder.encode_uncached(wipe)[0], atol=6e-4)  # rounded to 3 decimals for training


@pytest.mark.parametrize("message", [
    "Morning all. Long story short, I was clearing out the loft at the weekend, lots of boxes up and down the "
    "ladder, and my lower back has been grim since. I've been taking it easy and doing short walks. This "
    "morning though I realised I hadn't had a wee since yesterday teatime and I don't even feel like I need "
    "one. Anyway, is it better to walk on grass or pavement while it heals?",
    "my husband (70) put his back out digging the veg patch on friday, he's been stubborn as ever and still "
    "pottering about, but tonight he says both his feet have gone dead and it's spreading up past his ankles, "
    "and he's tripping over nothing. he wants to know if a short walk will loosen it off",
])
def test_a_red_flag_buried_in_a_long_story_is_caught_by_the_detector_alone(detector_only, message):
    assert detector_only.assess(message).level == "emergency"


def test_a_negation_inside_a_detail_does_not_cancel_the_clause(detector_only):
    """Only a negation that governs the clause ("no numbness ...") scopes it away; one inside a
    detail ("without fail", "nothing I do") leaves the symptom standing."""
    flagged = detector_only.assess("for weeks now the pain in my back wakes me every night without fail, "
                                   "whichever way I lie")
    assert flagged.level != "none", flagged
    assert detector_only.assess("no numbness or tingling anywhere, my back is just sore after gardening").level == "none"
