"""Property-based tests (hypothesis): arbitrary Unicode, very long input and junk history never
make ``validate``, ``answer()`` or the page's ``/ask`` raise, always give a valid ``kind`` and
finish in bounded time (hypothesis' deadline)."""

from __future__ import annotations

import json
import typing
import unicodedata
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.results import Kind
from assistant.validation import validate_history, validate_message

KINDS = set(typing.get_args(Kind))

# every code point class, including controls, format characters and private use (no lone surrogates)
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
long_text = st.builds(lambda t, n: (t * n)[:6000], st.text(min_size=1, max_size=40), st.integers(1, 400))
mixed = st.one_of(any_text, long_text, st.sampled_from([
    "is walking good for my back?", "\u200b\u200d\u2066", "<b>hi</b>", "\x1b[31m", "🧑‍⚕️🏃‍♂️",
]))


def _junk(floats: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), floats, any_text),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.sampled_from(["role", "content", "text", "type", "metadata", "x"]), children, max_size=4),
        ),
        max_leaves=12,
    )


junk = _junk(st.floats(allow_nan=True))
json_junk = _junk(st.floats(allow_nan=False, allow_infinity=False))  # what a JSON client can send at all
turn = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "x"]), "content": mixed})
history = st.one_of(st.none(), junk, st.lists(st.one_of(turn, junk), max_size=30))

PROPERTY = settings(
    max_examples=60, deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow], derandomize=True,
)


@PROPERTY
@given(message=st.one_of(mixed, junk))
def test_validate_never_raises_and_keeps_no_invisible_characters(message):
    got = validate_message(message, 2000)
    if got.ok:
        assert got.text.strip() and len(got.text) <= 2000
        for ch in got.text:
            assert unicodedata.category(ch) != "Cc"
            assert unicodedata.category(ch) != "Cf" or ch == "\u200d" or 0xE0020 <= ord(ch) <= 0xE007F
    else:
        assert got.problem


@PROPERTY
@given(items=history)
def test_history_is_always_a_bounded_tuple_of_turns(items):
    turns = validate_history(items, 20, 16000)
    assert len(turns) <= 20 and sum(len(t.content) for t in turns) <= 16000
    assert all(t.role in ("user", "assistant") and t.content for t in turns)


@PROPERTY
@given(message=st.one_of(mixed, junk), past=history)
def test_answer_never_raises_and_returns_a_valid_kind(bot, message, past):
    result = bot.answer(message, past)
    assert result.kind in KINDS
    assert result.text
    json.dumps(result.to_dict())
    if result.kind == "invalid_input":
        assert not result.citations


@pytest.fixture(scope="module")
def ask_client(bot, test_settings, tmp_path_factory):
    from gradio_client import Client

    from conftest import free_port
    from ui.app import build_app

    demo = build_app(bot, test_settings.model_copy(
        update={"feedback_db": tmp_path_factory.mktemp("props") / "f.sqlite3"}))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()
        demo.feedback_store.close()


@settings(max_examples=20, deadline=timedelta(seconds=20), suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(message=mixed, past=st.lists(st.one_of(turn, json_junk), max_size=6))
def test_ask_endpoint_never_fails(ask_client, message, past):
    got = ask_client.predict(message, past, api_name="/ask")
    assert got["kind"] in KINDS and got["text"]
