"""Turn an ``answer().to_dict()`` result into safe chat-message Markdown for ``gr.Chatbot``.

Everything that came from a person or a document is escaped here, before Gradio's own
sanitiser ever sees it: HTML special characters become entities (so ``<img onerror=...>`` is
shown as text and never becomes an element), and Markdown that could build links or images
is neutralised. The only raw HTML in a message is the small, fixed scaffolding written in this
module (banner, notices, the ``<details>`` source list), with every dynamic value escaped.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable, Iterator

# ----------------------------------------------------------------------------- escaping

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~=^$])")
_LEADING_WS = re.compile(r"^[ \t]+", re.MULTILINE)


def escape_html(text: str) -> str:
    """Escape ``& < > " '`` for use inside HTML text or attribute values."""
    return html.escape(str(text), quote=True)


def escape_user_text(text: str) -> str:
    """A user's message, shown exactly as typed: no Markdown, no HTML.

    Markdown punctuation is backslash-escaped and HTML characters become entities, so the
    Chatbot's Markdown renderer turns it back into the literal characters the person typed.
    """
    text = _LEADING_WS.sub("", str(text).replace("\r\n", "\n").replace("\r", "\n"))
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return html.escape(text, quote=False)


def escape_answer_markdown(text: str) -> str:
    """Answer text keeps its light Markdown (bold, italics, lists, paragraphs) but nothing else.

    * HTML: ``& < >`` become entities, so no tag from a document can reach the page.
    * Images and links: ``![``, ``](`` and reference definitions are escaped, so a document
      cannot make the page load a remote image or show a disguised link.
    * Code spans / indented code (which would show entities literally) are flattened.
    * ``$`` is escaped so nothing is ever typeset as maths.
    """
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"^[ \t]{4,}", "", text, flags=re.MULTILINE)  # no indented code blocks
    text = text.replace("\\", "\\\\")
    text = text.replace("`", "\\`").replace("$", "\\$")
    text = text.replace("![", "!\\[").replace("](", "]\\(")
    text = re.sub(r"^(\s*)\[([^\]\n]*)\]:", r"\1\\[\2\\]:", text, flags=re.MULTILINE)
    return html.escape(text, quote=False)


_REF = re.compile(r"(?<!\\)\[(\d{1,3})\](?!\\?\()")


def mark_references(escaped_markdown: str) -> str:
    """Wrap ``[n]`` markers (in already-escaped Markdown) in a small styled span.

    Only digits are captured, so this inserts no untrusted text into markup.
    """
    return _REF.sub(r'<span class="bp-ref">[\1]</span>', escaped_markdown)


def _inline_html(text: str) -> str:
    """Escaped text for inside a raw HTML block: ``**bold**`` kept, newlines become ``<br>``.

    Inside an HTML block Markdown is not parsed, so the little formatting we keep is done
    here, on already-escaped text; the result never contains a blank line (which would end
    the HTML block).
    """
    out = escape_html(" ".join(str(text).split("\n\n")))
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])_(.+?)_(?![\w*])", r"<em>\1</em>", out)
    return out.replace("\n", "<br>")


# ----------------------------------------------------------------------------- content blocks

KIND_NOTICES: dict[str, tuple[str, str]] = {
    # kind: (css modifier, plain-words label shown above the reply)
    "out_of_scope": ("scope", "Outside what I can answer"),
    "no_answer": ("noanswer", "My sources don\u2019t cover this"),
    "invalid_input": ("invalid", "I couldn\u2019t use that message"),
}

SUGGESTIONS: tuple[str, ...] = (
    "Is walking good for lower back pain?",
    "How long should I walk when I'm just starting?",
    "What is the right posture when walking?",
    "What shoes are best for walking with a bad back?",
)

BANNERS: dict[str, tuple[str, str, str]] = {
    # level: (icon, heading, fallback action when the reply text gives none)
    "emergency": (
        "\u26A0",
        "Emergency \u2014 get medical help now",
        "Call your local emergency number (999 in the UK, 911 in the US, 112 in Europe) "
        "or go to an emergency department now.",
    ),
    "urgent": (
        "\u26A0",
        "Urgent \u2014 see a doctor soon",
        "Please see a doctor in the next day or two, before carrying on with the plan you asked about.",
    ),
}


def banner_html(level: str, action: str | None = None) -> str:
    """The red-flag banner: level in words, then what to do. ``action`` is Markdown-ish text."""
    icon, heading, fallback = BANNERS[level]
    return (
        f'<div class="bp-banner bp-banner--{level}" role="alert" aria-label="{escape_html(heading)}">'
        f'<p class="bp-banner__level"><span aria-hidden="true">{icon}</span> {escape_html(heading.upper())}</p>'
        f'<p class="bp-banner__action">{_inline_html(action or fallback)}</p>'
        "</div>"
    )


def notice_html(kind: str) -> str:
    mod, label = KIND_NOTICES[kind]
    icon = "\u2139"
    return (
        f'<p class="bp-notice bp-notice--{mod}"><span aria-hidden="true">{icon}</span> '
        f"{escape_html(label)}</p>"
    )


def suggestions_markdown(exclude_text: str = "") -> str:
    """'You could ask' list for replies that could not answer, unless the text already has one."""
    if "you could ask" in exclude_text.lower():
        return ""
    items = "\n".join(f"- {escape_answer_markdown(s)}" for s in SUGGESTIONS[:3])
    return f"**You could ask, for example:**\n{items}"


def _section_label(section: str) -> str:
    return " \u203a ".join(p.strip() for p in str(section or "").split(" > ") if p.strip())


_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+")  # a list's opener ends with ":" before its first item


def quote_in_passage_html(passage: str, quote: str) -> str:
    """The passage, with the sentences the answer used marked (``<mark>``): the reader sees both
    what was quoted and what surrounds it. Both are escaped before any tag is added."""
    passage = " ".join(str(passage or quote).split())
    out = _inline_html(passage)
    for sentence in _SENTENCE_END.split(" ".join(str(quote).split())):
        piece = _inline_html(sentence)
        if piece and piece in out:
            out = out.replace(piece, f'<mark class="bp-source__used">{piece}</mark>', 1)
    return out


def sources_html(citations: Iterable[dict[str, Any]]) -> str:
    """Numbered sources, each a keyboard-operable ``<details>`` with the passage and, highlighted in
    it, the exact sentences quoted."""
    items = []
    for c in citations:
        n = escape_html(c.get("n", "?"))
        title = escape_html(c.get("title") or c.get("source") or "Untitled source")
        section = _section_label(c.get("section", ""))
        if section.casefold() == str(c.get("title") or "").strip().casefold():
            section = ""  # the article's own heading: saying it twice helps nobody
        section_html = f'<span class="bp-source__section">{escape_html(section)}</span>' if section else ""
        quote = quote_in_passage_html(c.get("passage", ""), c["quote"]) if c.get("quote") else "<em>(no passage)</em>"
        source = escape_html(c.get("source", ""))
        items.append(
            f'<details class="bp-source" data-n="{n}">'
            f'<summary><span class="bp-source__n">[{n}]</span> '
            f'<span class="bp-source__title">{title}</span>{section_html}</summary>'
            f'<blockquote class="bp-source__quote">{quote}</blockquote>'
            + (f'<p class="bp-source__file">Source file: {source}</p>' if source else "")
            + "</details>"
        )
    if not items:
        return ""
    return (
        '<div class="bp-sources" role="group" aria-label="Sources for this reply">'
        '<p class="bp-sources__title">Sources \u2014 open one to read the exact passage</p>'
        + "".join(items)
        + "</div>"
    )


# ----------------------------------------------------------------------------- whole replies

def _split_red_flag(text: str) -> tuple[str, str]:
    """Red-flag text starts with the bolded 'what to do' paragraph: it goes into the banner."""
    head, sep, rest = str(text).partition("\n\n")
    if head.startswith("**") and sep:
        return head, rest
    return "", str(text)


def render_reply(result: dict[str, Any], text: str | None = None, final: bool = True) -> str:
    """Chat-message Markdown for a result; ``text`` overrides the body (a streaming prefix)."""
    kind = result.get("kind", "answer")
    level = (result.get("safety") or {}).get("level", "none")
    body = str(result.get("text", "")) if text is None else text
    blocks: list[str] = []

    if level in BANNERS:
        action = ""
        if kind == "red_flag":
            action, body = _split_red_flag(body)
        blocks.append(banner_html(level, action or None))
    elif kind in KIND_NOTICES and result.get("reason") != "small_talk":  # a greeting is not a refusal
        blocks.append(notice_html(kind))

    if body.strip():
        blocks.append(mark_references(escape_answer_markdown(body.strip())))

    if final:
        if kind in ("no_answer", "invalid_input"):
            extra = suggestions_markdown(body)
            if extra:
                blocks.append(extra)
        src = sources_html(result.get("citations") or [])
        if src:
            blocks.append(src)
    # Blank lines between blocks: raw HTML blocks end there and Markdown resumes.
    return "\n\n".join(blocks)


_BOUNDARY = re.compile(r"(?:[.!?\u2026]+[\"'\u201d\u2019)\]]*(?:\s*\[\d+\])*[.,;:]?|\n)(?=\s|$)")


def sentence_prefixes(text: str) -> list[str]:
    """Growing prefixes of ``text`` that end on sentence (or line) boundaries; the last is ``text``."""
    text = str(text)
    cuts = sorted({m.end() for m in _BOUNDARY.finditer(text)} | {len(text)})
    out: list[str] = []
    for cut in cuts:
        prefix = text[:cut].rstrip()
        if prefix and (not out or prefix != out[-1]):
            out.append(prefix)
    return out or [""]


def stream_frames(result: dict[str, Any]) -> Iterator[str]:
    """Message contents to yield one after another while 'typing' a finished answer.

    Red-flag replies arrive whole, banner first: urgent advice is never drip-fed.
    Sources appear with the last frame, once every ``[n]`` marker they explain is on screen.
    """
    if result.get("kind") == "red_flag" or (result.get("safety") or {}).get("level") in BANNERS:
        yield render_reply(result)
        return
    prefixes = sentence_prefixes(str(result.get("text", "")))
    for prefix in prefixes[:-1]:
        yield render_reply(result, text=prefix, final=False)
    yield render_reply(result)


# ----------------------------------------------------------------------------- history

def message_text(content: Any) -> str:
    """Plain text of a Gradio message's content: a string, a list of blocks, or a ChatMessage."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if content.get("type") == "text" or "text" in content:
            return str(content.get("text", ""))
        return ""
    if isinstance(content, (list, tuple)):
        return " ".join(t for t in (message_text(c) for c in content) if t)
    text = getattr(content, "text", None)
    return str(text) if isinstance(text, str) else ""


def to_history(messages: Iterable[Any] | None) -> list[dict[str, str]]:
    """Gradio / OpenAI style chat history -> ``[{"role", "content"}]`` with plain-string content.

    Accepts dicts or ``gr.ChatMessage`` objects; content may be a string or a list of blocks
    (Gradio 6). Messages carrying a metadata title (thoughts, tool logs) and anything that is
    not a user/assistant text turn are dropped.
    """
    out: list[dict[str, str]] = []
    if not isinstance(messages, (list, tuple)):
        return out
    for m in messages:
        if isinstance(m, dict):
            role, content, meta = m.get("role"), m.get("content"), m.get("metadata")
        else:
            role, content, meta = getattr(m, "role", None), getattr(m, "content", None), getattr(m, "metadata", None)
        if role not in ("user", "assistant"):
            continue
        if isinstance(meta, dict) and meta.get("title"):
            continue
        text = message_text(content).strip()
        if text:
            out.append({"role": role, "content": text})
    return out
