"""The chat page's named API (via gradio_client), its concurrency, and its escaping/rendering.

The app is launched for real on a free port; ``/ask`` must return exactly what
``Assistant.answer(...).to_dict()`` returns, for one client and for twenty at once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ui import render

QUESTIONS = [
    "Is walking good for lower back pain?",
    "How long should I walk when I'm just starting?",
    "What shoes are best for walking with a bad back?",
    "What is the right posture when walking?",
    "I can't feel my bum or groin and I've wet myself, my back is killing me",
    "What's the capital of France?",
    "",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _comparable(d: dict[str, Any]) -> dict[str, Any]:
    """The result as it looks after a JSON round trip, minus per-call timings."""
    d = json.loads(json.dumps(d))
    d.pop("timings_ms", None)
    return d


def _launch(bot: Any, settings: Any):
    from ui.app import build_app

    demo = build_app(bot, settings)
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    return demo


@pytest.fixture(scope="module")
def ui_settings(test_settings, tmp_path_factory):
    return test_settings.model_copy(update={"feedback_db": tmp_path_factory.mktemp("ui_api") / "feedback.sqlite3"})


@pytest.fixture(scope="module")
def app_url(bot, ui_settings):
    demo = _launch(bot, ui_settings)
    try:
        yield demo.local_url
    finally:
        demo.close()
        demo.feedback_store.close()


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


# --------------------------------------------------------------------------- the named endpoint

def test_ask_is_the_one_documented_endpoint(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert list(info["named_endpoints"]) == ["/ask"]
    params = [p["parameter_name"] for p in info["named_endpoints"]["/ask"]["parameters"]]
    assert params == ["message", "history"]
    assert not info["unnamed_endpoints"]


@pytest.mark.parametrize("question", QUESTIONS[:6])
def test_ask_returns_the_same_dict_as_answer(client, bot, question):
    got = client.predict(question, api_name="/ask")
    want = bot.answer(question).to_dict()
    assert _comparable(got) == _comparable(want)
    assert set(got["timings_ms"]) == set(want["timings_ms"])


def test_ask_uses_history(client, bot):
    first = bot.answer("Is walking good for lower back pain?").to_dict()
    history = [
        {"role": "user", "content": "Is walking good for lower back pain?"},
        {"role": "assistant", "content": first["text"]},
    ]
    follow_up = "How long should I do it for each day?"
    got = client.predict(follow_up, history, api_name="/ask")
    assert _comparable(got) == _comparable(bot.answer(follow_up, history).to_dict())
    # Gradio 6 style content blocks are accepted too and mean the same thing.
    blocks = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in history]
    assert _comparable(client.predict(follow_up, blocks, api_name="/ask")) == _comparable(got)


def test_ask_red_flag_and_invalid_input_shapes(client):
    red = client.predict(QUESTIONS[4], api_name="/ask")
    assert red["kind"] == "red_flag"
    assert red["safety"]["level"] == "emergency"
    assert red["safety"]["reasons"]
    empty = client.predict("", api_name="/ask")
    assert empty["kind"] == "invalid_input"


def test_twenty_concurrent_clients_all_get_correct_answers(app_url, bot):
    from gradio_client import Client

    expected = {q: _comparable(bot.answer(q).to_dict()) for q in QUESTIONS}
    barrier = threading.Barrier(20)

    def one(i: int) -> tuple[str, dict]:
        q = QUESTIONS[i % len(QUESTIONS)]
        c = Client(app_url, verbose=False)
        barrier.wait(timeout=120)
        return q, c.predict(q, api_name="/ask")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert len(results) == 20
    for q, got in results:
        assert _comparable(got) == expected[q], q


class _SpyBot:
    """Wraps the real assistant and records how many answers run at the same time."""

    def __init__(self, bot: Any, delay: float = 0.25):
        self.bot, self.settings, self.delay = bot, bot.settings, delay
        self.lock = threading.Lock()
        self.running = self.peak = self.calls = 0

    def answer(self, message: Any, history: Any = None):
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.delay)
            return self.bot.answer(message, history)
        finally:
            with self.lock:
                self.running -= 1


def test_queue_runs_answers_in_parallel_up_to_the_configured_limit(bot, ui_settings):
    from gradio_client import Client

    spy = _SpyBot(bot)
    settings = ui_settings.model_copy(update={"concurrency_limit": 4})
    demo = _launch(spy, settings)
    try:
        url = demo.local_url
        clients = [Client(url, verbose=False) for _ in range(12)]
        with ThreadPoolExecutor(12) as pool:
            kinds = list(pool.map(lambda c: c.predict(QUESTIONS[0], api_name="/ask")["kind"], clients))
    finally:
        demo.close()
        demo.feedback_store.close()
    assert kinds == ["answer"] * 12
    assert spy.calls == 12
    assert 2 <= spy.peak <= 4, f"peak concurrency {spy.peak}: the limit must be used, and respected"


# --------------------------------------------------------------------------- rendering (no server)

XSS = "<img src=x onerror=alert(1)>"


def test_user_text_is_escaped_not_rendered():
    out = render.escape_user_text(XSS + " **bold** [link](http://x) ![i](http://x/i.png) `code` $x$")
    assert "<" not in out and ">" not in out
    assert out.startswith("&lt;img src") and "&gt;" in out
    assert "\\*\\*bold\\*\\*" in out and "!\\[i\\]\\(" in out


def test_answer_markdown_keeps_formatting_but_not_html_images_or_links():
    text = "Walk **daily** [1].\n- short walks [2]\n<script>alert(1)</script> ![x](http://e/x.png) [y](javascript:alert(1))"
    out = render.escape_answer_markdown(text)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "**daily**" in out and "\n- short walks" in out
    assert "![" not in out and "](" not in out
    marked = render.mark_references(out)
    assert '<span class="bp-ref">[1]</span>' in marked and '<span class="bp-ref">[2]</span>' in marked


def test_sources_are_escaped_details_with_the_quote():
    cites = [{"n": 1, "title": "<b>T</b>", "source": "s.md", "section": "A > B", "quote": "Line one.\n\n<img src=x onerror=alert(1)>", "score": 0.5}]
    html = render.sources_html(cites)
    assert html.count("<details") == 1 and "<summary>" in html
    assert "&lt;b&gt;T&lt;/b&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in html and "<b>" not in html
    assert "\n\n" not in html  # a blank line would end the raw HTML block
    assert "A \u203a B" in html


def test_the_quoted_sentences_are_highlighted_inside_their_escaped_passage():
    cites = [{"n": 1, "title": "T", "source": "s.md", "section": "", "score": 0.5,
              "passage": "Walking helps. Start with <b>ten</b> minutes a day. Then build up slowly.",
              "quote": "Start with <b>ten</b> minutes a day."}]
    html = render.sources_html(cites)
    assert '<mark class="bp-source__used">Start with &lt;b&gt;ten&lt;/b&gt; minutes a day.</mark>' in html
    assert "Walking helps." in html and "Then build up slowly." in html  # the context is shown, unmarked
    assert html.count("<mark") == 1 and "<b>" not in html


def test_a_list_opener_and_an_item_quoted_together_are_both_highlighted():
    cites = [{"n": 1, "title": "T", "source": "s.md", "section": "", "score": 0.5,
              "passage": "Walking eases pain. It helps to:\n- Improve balance\n- Reduce stiffness in the hips",
              "quote": "It helps to: Reduce stiffness in the hips"}]
    html = render.sources_html(cites)
    assert '<mark class="bp-source__used">It helps to:</mark>' in html
    assert '<mark class="bp-source__used">Reduce stiffness in the hips</mark>' in html
    assert html.count("<mark") == 2


def test_red_flag_reply_has_banner_above_reasons():
    result = {
        "kind": "red_flag",
        "text": "**Please get medical help now: call 999.** Don't wait.\n\nWhat raised the concern:\n- you mentioned \u201cwet myself\u201d\n\nTail.",
        "citations": [],
        "safety": {"level": "emergency", "reasons": ["cauda_equina: \u201cwet myself\u201d"]},
    }
    out = render.render_reply(result)
    assert out.index("bp-banner--emergency") < out.index("What raised the concern")
    assert "EMERGENCY" in out and "<strong>Please get medical help now: call 999.</strong>" in out
    frames = list(render.stream_frames(result))
    assert frames == [out]  # never drip-fed


@pytest.mark.parametrize("kind", ["out_of_scope", "no_answer", "invalid_input"])
def test_non_answers_say_so_plainly_and_suggest_questions(kind):
    out = render.render_reply({"kind": kind, "text": "Sorry.", "citations": [], "safety": {"level": "none", "reasons": []}})
    assert "bp-notice" in out
    if kind != "out_of_scope":
        assert "You could ask" in out


def test_a_greeting_is_answered_in_kind_not_labelled_out_of_scope(bot):
    hello = bot.answer("hello there").to_dict()
    assert hello["kind"] == "out_of_scope" and hello["reason"] == "small_talk"
    assert "bp-notice" not in render.render_reply(hello)
    poem = bot.answer("write me a poem about the sea").to_dict()
    assert poem["kind"] == "out_of_scope" and poem["reason"] != "small_talk"
    assert "Outside what I can answer" in render.render_reply(poem)


def test_streaming_grows_sentence_by_sentence_and_ends_with_sources():
    result = {
        "kind": "answer",
        "text": "Walking helps. [1] Start with 5 minutes! [2] Build up slowly.\n\n_Not medical advice._",
        "citations": [{"n": 1, "title": "T", "source": "s", "section": "S", "quote": "Q", "score": 0.5}],
        "safety": {"level": "none", "reasons": []},
    }
    frames = list(render.stream_frames(result))
    assert len(frames) >= 4
    assert all(len(a) < len(b) for a, b in zip(frames, frames[1:]))
    assert "bp-sources" in frames[-1] and all("bp-sources" not in f for f in frames[:-1])
    assert frames[-1] == render.render_reply(result)


def test_history_conversion_handles_gradio6_blocks_and_drops_metadata():
    msgs = [
        {"role": "user", "content": [{"type": "text", "text": "Is walking good?"}]},
        {"role": "assistant", "content": "Yes [1].", "metadata": None},
        {"role": "assistant", "content": "thinking", "metadata": {"title": "Sources"}},
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": ""},
    ]
    assert render.to_history(msgs) == [
        {"role": "user", "content": "Is walking good?"},
        {"role": "assistant", "content": "Yes [1]."},
    ]
    assert render.to_history(None) == []
