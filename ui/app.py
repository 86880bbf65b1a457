"""The Gradio chat page.

``serve()`` loads one :class:`assistant.Assistant` (model + store, once) and serves the page;
``build_app(bot, settings)`` builds it without launching (tests launch it themselves).

Two ways in, one pipeline: the chat streams ``bot.answer(...)`` rendered by :mod:`ui.render`,
and the named API endpoint ``/ask`` returns ``bot.answer(...).to_dict()`` unchanged::

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    result = client.predict("Is walking good for lower back pain?", api_name="/ask")
    print(result["kind"], result["text"])
    for c in result["citations"]: print(c["n"], c["title"], c["section"])
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # closed network: never phone home

import gradio as gr  # noqa: E402

from assistant.feedback import FeedbackStore  # noqa: E402
from assistant.settings import Settings, get_settings  # noqa: E402

from . import render  # noqa: E402

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
CSS_PATH = STATIC_DIR / "app.css"
TITLE = "Walking and back pain \u2014 ask the articles"
API_NAME = "ask"
STREAM_DELAY_S = 0.045  # pause between streamed sentences: readable, never slow
MAX_SHOWN_USER_CHARS = 4000

EXAMPLES: tuple[str, ...] = (
    "Is walking good for lower back pain?",
    "How long should I walk when I'm just starting?",
    "What is the right posture when walking?",
    "What shoes are best for walking with a bad back?",
)

HEADER_MD = f"""
# {TITLE}

Answers come **only** from a small set of articles about walking and back pain, with numbered
sources you can open and check.
"""

DISCLAIMER_HTML = (
    '<p class="bp-disclaimer" role="note">'
    "<strong>General information, not medical advice.</strong> "
    "In an emergency, call your local emergency number (999 in the UK, 911 in the US, 112 in Europe)."
    "</p>"
)

PLACEHOLDER_MD = (
    "**Ask a question about walking and back pain.**\n\n"
    "Tap an example to start, or type your own below. Follow-up questions are fine."
)

# After a reply has finished streaming: if it is taller than the chat window (or carries a
# red-flag banner), scroll so its first line, not its last, is in view. Once the person
# scrolls, the Chatbot stops pinning the view to the bottom, so this sticks.
SHOW_REPLY_START_JS = """
() => {
  setTimeout(() => {
    const rows = document.querySelectorAll('#bp-chat .message-row.bot-row');
    const last = rows[rows.length - 1];
    if (!last) return;
    let box = last.parentElement;
    while (box && !(box.scrollHeight > box.clientHeight + 4 &&
                    ['auto', 'scroll'].includes(getComputedStyle(box).overflowY))) {
      box = box.parentElement;
    }
    if (!box) return;
    const tall = last.getBoundingClientRect().height > box.clientHeight * 0.85;
    if (tall || last.querySelector('.bp-banner')) {
      box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    }
  }, 650);  // after the Chatbot's own scroll-to-bottom, which runs ~300 ms after each update
}
"""

# When a new question is sent, jump to the bottom so the Chatbot follows the new reply again
# (it only auto-scrolls while the view is at the bottom).
FOLLOW_NEW_REPLY_JS = """
() => {
  const wrap = document.querySelector('#bp-chat .bubble-wrap');
  if (wrap) wrap.scrollTop = wrap.scrollHeight;
}
"""

THANKS_VOTE = "Thank you \u2014 your feedback was saved. You can add a comment below if you like."
THANKS_COMMENT = "Thank you \u2014 your comment was saved."


def _theme() -> gr.themes.Base:
    system_fonts = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif")
    return gr.themes.Soft(
        primary_hue="teal",
        secondary_hue="sky",
        neutral_hue="slate",
        text_size="md",
        radius_size="md",
        font=system_fonts,
        font_mono=("ui-monospace", "Menlo", "Consolas", "monospace"),
    )


class ChatPage(gr.Blocks):
    """``gr.Blocks`` that brings its own theme and stylesheet to ``launch()``.

    Gradio 6 takes ``theme``/``css`` at launch time; folding them in here means any caller,
    ``serve()`` or a test, gets the same page from a plain ``demo.launch(...)``.
    """

    def launch(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        kwargs.setdefault("theme", _theme())
        kwargs.setdefault("css_paths", [CSS_PATH])
        kwargs.setdefault("footer_links", ["api", "gradio"])
        kwargs.setdefault("show_error", False)
        return super().launch(*args, **kwargs)


# ----------------------------------------------------------------------------- helpers

def _history_from_records(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation so far as plain ``{"role", "content"}`` strings, from what was really said.

    We keep the raw question and answer text of each turn in session state, so the history
    the assistant sees never contains the page's escaping or HTML scaffolding.
    """
    hist: list[dict[str, str]] = []
    for r in records:
        hist.append({"role": "user", "content": r["question"]})
        hist.append({"role": "assistant", "content": r["text"]})
    return hist


def _shown_user_text(message: str) -> str:
    if len(message) > MAX_SHOWN_USER_CHARS:
        more = len(message) - MAX_SHOWN_USER_CHARS
        return render.escape_user_text(message[:MAX_SHOWN_USER_CHARS]) + f"\n\n_\u2026 ({more:,} more characters)_"
    return render.escape_user_text(message)


def _vote_from_like(data: gr.LikeData) -> str | None:
    liked = data.liked
    if liked is True or (isinstance(liked, str) and liked.lower() == "like"):
        return "like"
    if liked is False or (isinstance(liked, str) and liked.lower() == "dislike"):
        return "dislike"
    return None


def _index_of(data: gr.LikeData) -> int | None:
    idx = data.index
    if isinstance(idx, (list, tuple)):
        idx = idx[0] if idx else None
    try:
        return int(idx) if idx is not None else None
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------- the page

def build_app(bot: Any, settings: Settings | None = None) -> gr.Blocks:
    """Build (not launch) the chat page around an already-loaded :class:`assistant.Assistant`."""
    settings = settings or getattr(bot, "settings", None) or get_settings()
    store = FeedbackStore(settings.feedback_db)
    limit = max(1, int(settings.concurrency_limit))

    # ------------------------------------------------------------------ event functions
    def ask(message: str, history: list[dict] | None = None) -> dict:
        """Answer a question about walking and back pain from the article corpus.

        Args:
            message: the question, plain text.
            history: optional earlier turns, [{"role": "user" | "assistant", "content": str}, ...]
                (content may also be a list of {"type": "text", "text": ...} blocks).

        Returns:
            The same dict as ``assistant.answer(message, history).to_dict()``: kind, text,
            citations, safety, contexts, timings_ms.
        """
        return bot.answer(message, render.to_history(history)).to_dict()

    def respond(message: str, chat: list[dict], records: list[dict], request: gr.Request | None = None
                ) -> Iterator[tuple]:
        message = message if isinstance(message, str) else ""
        chat = list(chat or [])
        records = list(records or [])
        hide_comment = gr.update(visible=False)
        if not message.strip():
            yield chat, gr.update(), records, hide_comment, gr.update()
            return
        chat.append({"role": "user", "content": _shown_user_text(message)})
        yield chat, "", records, hide_comment, ""

        history = _history_from_records(records)
        try:
            result = bot.answer(message, history).to_dict()
        except Exception:  # never show a stack trace to someone in pain
            log.exception("answer failed")
            chat.append({"role": "assistant", "content": (
                "Sorry \u2014 something went wrong on my side and I couldn't answer. Please try again in a moment. "
                "If your pain is severe or you feel unwell, please contact a health professional."
            )})
            yield chat, gr.update(), records, hide_comment, gr.update()
            return

        records.append({
            "index": len(chat),
            "id": uuid.uuid4().hex,  # the reply's identity for votes (indexes restart on Clear)
            "question": message,
            "history_len": len(history),
            "text": result["text"],
            "kind": result["kind"],
            "citations": result["citations"],
            "level": result["safety"]["level"],
        })
        chat.append({"role": "assistant", "content": ""})
        first = True
        for frame in render.stream_frames(result):
            if not first:
                time.sleep(STREAM_DELAY_S)
            first = False
            chat[-1] = {"role": "assistant", "content": frame}
            yield chat, gr.update(), records, hide_comment, gr.update()

    def respond_example(chat: list[dict], records: list[dict], evt: gr.SelectData,
                        request: gr.Request | None = None) -> Iterator[tuple]:
        value = evt.value
        text = value.get("text", "") if isinstance(value, dict) else str(value or "")
        yield from respond(text, chat, records, request)

    def on_like(records: list[dict], data: gr.LikeData, request: gr.Request | None = None):
        vote = _vote_from_like(data)
        idx = _index_of(data)
        rec = next((r for r in (records or []) if r["index"] == idx), None)
        if vote is None or rec is None:  # an un-vote, or a message we know nothing about
            return None, gr.update(visible=False), gr.update(value=""), ""
        row_id = store.add(
            question=rec["question"],
            answer=rec["text"],
            vote=vote,
            history_len=rec["history_len"],
            kind=rec["kind"],
            citations=rec["citations"],
            safety_level=rec["level"],
            session_id=getattr(request, "session_hash", "") or "",
            message_id=rec.get("id", ""),
        )
        return row_id, gr.update(visible=True), gr.update(value=""), THANKS_VOTE

    def on_comment(row_id: int | None, comment: str):
        comment = (comment or "").strip()
        if row_id is None:
            return gr.update(visible=False), gr.update(value=""), ""
        if not comment:
            return gr.update(visible=True), gr.update(), "Type a comment first, or simply carry on chatting."
        store.set_comment(int(row_id), comment)
        return gr.update(visible=False), gr.update(value=""), THANKS_COMMENT

    def clear_all():
        return [], [], None, gr.update(visible=False), gr.update(value=""), "", ""

    # ------------------------------------------------------------------ layout
    with ChatPage(title=TITLE, analytics_enabled=False, fill_width=False) as demo:
        records = gr.State([])
        last_row = gr.State(None)

        with gr.Column(elem_id="bp-page"):
            gr.Markdown(HEADER_MD, elem_id="bp-header")
            gr.HTML(DISCLAIMER_HTML, elem_id="bp-disclaimer-box", padding=False)

            chatbot = gr.Chatbot(
                label="Conversation",
                show_label=False,
                elem_id="bp-chat",
                height="62vh",
                min_height=360,
                layout="bubble",
                placeholder=PLACEHOLDER_MD,
                examples=[{"text": q} for q in EXAMPLES],
                feedback_options=("Like", "Dislike"),
                sanitize_html=True,
                render_markdown=True,
                allow_tags=False,
                latex_delimiters=[],
                line_breaks=True,
                buttons=[],  # Gradio's copy buttons copy the raw (escaped) source, not the text
                autoscroll=True,
                group_consecutive_messages=False,
            )

            with gr.Row(elem_id="bp-ask-row", equal_height=True):
                question = gr.Textbox(
                    label="Your question",
                    placeholder="For example: how far should I walk with lower back pain?",
                    lines=1,
                    max_lines=6,
                    autofocus=True,
                    scale=5,
                    min_width=200,
                    elem_id="bp-question",
                    html_attributes=gr.InputHTMLAttributes(autocomplete="off", enterkeyhint="send",
                                                           spellcheck=True),
                )
            with gr.Row(elem_id="bp-buttons"):
                send = gr.Button("Send", variant="primary", elem_id="bp-send", scale=1, min_width=100)
                clear = gr.Button("Clear chat", variant="secondary", elem_id="bp-clear",
                                  scale=1, min_width=100)

            feedback_status = gr.Markdown("", elem_id="bp-feedback-status")
            with gr.Group(visible=False, elem_id="bp-comment") as comment_row:
                comment = gr.Textbox(
                    label="Comment on this reply (optional)",
                    placeholder="What was helpful, wrong or missing?",
                    lines=2,
                    max_lines=6,
                    max_length=2000,
                    elem_id="bp-comment-text",
                )
                comment_send = gr.Button("Send comment", variant="secondary", elem_id="bp-comment-send",
                                         size="md")

            gr.Markdown(
                "Replies are put together from passages of the articles; each **[n]** points to a "
                "numbered source under the reply. If you rate a reply, the question, the reply and "
                "your comment are stored to help improve the answers.",
                elem_id="bp-footnote",
            )

        # ------------------------------------------------------------------ events
        chat_outputs = [chatbot, question, records, comment_row, feedback_status]
        asked = gr.on(
            triggers=[question.submit, send.click],
            fn=respond,
            inputs=[question, chatbot, records],
            outputs=chat_outputs,
            api_visibility="private",
            concurrency_id="answer",
            trigger_mode="once",
            show_progress="minimal",
        )
        asked.then(None, js=SHOW_REPLY_START_JS, api_visibility="private", queue=False)
        gr.on(triggers=[question.submit, send.click, chatbot.example_select], fn=None,
              js=FOLLOW_NEW_REPLY_JS, api_visibility="private", queue=False)
        picked = chatbot.example_select(
            respond_example,
            inputs=[chatbot, records],
            outputs=chat_outputs,
            api_visibility="private",
            concurrency_id="answer",
            show_progress="minimal",
        )
        picked.then(None, js=SHOW_REPLY_START_JS, api_visibility="private", queue=False)
        chatbot.like(
            on_like,
            inputs=[records],
            outputs=[last_row, comment_row, comment, feedback_status],
            api_visibility="private",
            queue=False,
        )
        gr.on(
            triggers=[comment.submit, comment_send.click],
            fn=on_comment,
            inputs=[last_row, comment],
            outputs=[comment_row, comment, feedback_status],
            api_visibility="private",
            queue=False,
        )
        clear_outputs = [chatbot, records, last_row, comment_row, comment, feedback_status, question]
        clear.click(clear_all, None, clear_outputs, api_visibility="private", queue=False)
        chatbot.clear(clear_all, None, clear_outputs, api_visibility="private", queue=False)

        gr.api(ask, api_name=API_NAME, concurrency_id="answer")

    # Many people at once: every answering event shares one pool of `limit` workers
    # (Gradio's default is 1, which would make everyone wait in line behind one person).
    # Gradio's queue otherwise rebuilds a pandas table of its last 10,000 events after every event,
    # for a monitoring view this page does not use: at saturation that was a tenth of the server's CPU.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "500")
    demo.queue(default_concurrency_limit=limit, max_size=max(64, limit * 32))
    demo.feedback_store = store  # type: ignore[attr-defined]  # for tests and shutdown
    return demo


def serve(settings: Settings | None = None, host: str | None = None, port: int | None = None) -> None:
    """Load the assistant once and serve the page (blocks until interrupted)."""
    from assistant import Assistant

    settings = settings or get_settings()
    bot = Assistant(settings, ensure_index=True)  # brings the index up to date (cheap when it is)
    demo = build_app(bot, settings)
    log.info("serving on http://%s:%s (concurrency limit %s, feedback in %s)", host or settings.host,
             port or settings.port, settings.concurrency_limit, settings.feedback_db)
    try:
        demo.launch(
            server_name=host or settings.host,
            server_port=int(port or settings.port),
        )
    finally:
        demo.feedback_store.close()  # type: ignore[attr-defined]


if __name__ == "__main__":  # python -m ui.app
    logging.basicConfig(level=get_settings().log_level)
    serve()
