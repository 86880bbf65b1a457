"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Launches the chat page on a free port and uses it like a person would: asks, reads the
sources, votes and comments (then finds the row in SQLite), trips a red flag, tries to inject
markup, and does it all again on a phone-sized screen with the keyboard alone. Screenshots go
to artifacts/screenshots/ (git-ignored). Without Chromium the tests skip, except in CI
(CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import PROJECT_ROOT

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}

QUESTION = "Is walking good for lower back pain?"
FOLLOW_UP = "How long should I walk each day when I start?"
RED_FLAG = "I can't feel my bum or groin and I've wet myself, my back is killing me"
XSS = "<img src=x onerror=alert(1)>"
REPLY_TIMEOUT_MS = 60_000


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _browser_missing(reason: str):
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: the browser test must run in CI)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _norm(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def playwright_browser():
    if not CHROMIUM.exists():
        _browser_missing(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        _browser_missing("the playwright package is not installed")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:  # noqa: BLE001
        pw.stop()
        _browser_missing(f"Chromium would not start: {exc}")
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


@pytest.fixture(scope="module")
def browser_settings(test_settings, tmp_path_factory):
    return test_settings.model_copy(
        update={"feedback_db": tmp_path_factory.mktemp("ui_browser") / "data" / "feedback.sqlite3"}
    )


@pytest.fixture(scope="module")
def app_url(bot, browser_settings, playwright_browser):
    from ui.app import build_app

    demo = build_app(bot, browser_settings)
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()
        demo.feedback_store.close()


@pytest.fixture()
def open_page(playwright_browser, app_url):
    """Factory: a fresh page (own session) at the given viewport; records dialogs and errors."""
    contexts = []

    def _open(viewport: dict[str, int]):
        ctx = playwright_browser.new_context(viewport=viewport)
        contexts.append(ctx)
        page = ctx.new_page()
        page.dialogs = []  # type: ignore[attr-defined]
        page.outside_requests = []  # type: ignore[attr-defined]

        def on_dialog(d):
            page.dialogs.append(d.message)  # type: ignore[attr-defined]
            d.dismiss()

        page.on("dialog", on_dialog)
        page.on("request", lambda r: None if r.url.startswith(app_url) or r.url.startswith("data:")
                else page.outside_requests.append(r.url))  # type: ignore[attr-defined]
        page.goto(app_url)
        page.get_by_label("Your question").wait_for(timeout=REPLY_TIMEOUT_MS)
        return page

    yield _open
    for ctx in contexts:
        ctx.close()


# --------------------------------------------------------------------------- helpers

def _bot_rows(page):
    return page.locator("#bp-chat .message-row.bot-row")


def _ask(page, text: str, *, keyboard: bool = False) -> Any:
    """Send a message and wait until its reply has finished streaming; returns the reply locator."""
    before = _bot_rows(page).count()
    box = page.get_by_label("Your question")
    if keyboard:
        box.focus()
        page.keyboard.type(text)
        page.keyboard.press("Enter")
    else:
        box.fill(text)
        page.get_by_role("button", name="Send", exact=True).click()
    return _wait_reply(page, before)


def _wait_reply(page, before: int) -> Any:
    page.wait_for_function(
        "n => document.querySelectorAll('#bp-chat .message-row.bot-row').length > n",
        arg=before, timeout=REPLY_TIMEOUT_MS,
    )
    reply = _bot_rows(page).last
    # finished = the message stopped changing (streaming is sentence by sentence, ~50 ms apart)
    deadline, last, stable_since = time.time() + REPLY_TIMEOUT_MS / 1000, None, time.time()
    while time.time() < deadline:
        html = reply.inner_html()
        if html != last:
            last, stable_since = html, time.time()
        elif html and time.time() - stable_since > 1.0:
            break
        time.sleep(0.1)
    return reply


def _rows(db: Path) -> list[dict]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM feedback ORDER BY id")]


def _wait_for_row(db: Path, pred, timeout: float = 15.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for row in _rows(db):
            if pred(row):
                return row
        time.sleep(0.2)
    raise AssertionError(f"no matching feedback row in {db}: {_rows(db)}")


def _wait_banner_in_view(page) -> None:
    """After a red-flag reply the chat scrolls so the (last) banner's top is in view."""
    page.wait_for_function(
        """() => { const all = document.querySelectorAll('#bp-chat .bp-banner'); const b = all[all.length - 1];
                   const box = document.querySelector('#bp-chat').getBoundingClientRect();
                   const r = b.getBoundingClientRect(); return r.top >= box.top - 2 && r.top < box.bottom - 40; }""",
        timeout=5000,
    )


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# --------------------------------------------------------------------------- tests

def test_answer_with_sources_vote_and_comment(open_page, bot, browser_settings):
    import assistant

    page = open_page(DESKTOP)
    _shot(page, "desktop-01-start")
    expected = bot.answer(QUESTION).to_dict()
    assert expected["kind"] == "answer" and expected["citations"]

    reply = _ask(page, QUESTION)
    sources = reply.locator(".bp-sources details.bp-source")
    assert sources.count() == len(expected["citations"]) >= 1
    assert reply.locator(".bp-ref").count() >= 1          # inline [n] markers
    assert "[1]" in reply.inner_text()
    assert _norm(expected["citations"][0]["title"]) in _norm(sources.first.locator("summary").inner_text())

    # Expand the first source: the whole passage, with the exact quoted sentences highlighted in it.
    quote = sources.first.locator(".bp-source__quote")
    assert not quote.is_visible()
    sources.first.locator("summary").click()
    quote.wait_for(state="visible")
    assert _norm(quote.inner_text()) == _norm(expected["citations"][0]["passage"])
    used = quote.locator("mark.bp-source__used")
    assert used.count() >= 1
    assert _norm(" ".join(used.all_inner_texts())) == _norm(expected["citations"][0]["quote"])
    _shot(page, "desktop-02-answer-source-open")

    # Like it, add a comment, find the row in SQLite.
    page.get_by_role("button", name="Like", exact=True).last.click()
    page.get_by_text("your feedback was saved").wait_for()
    comment = page.get_by_label("Comment on this reply (optional)")
    comment.fill("Clear and calm, thank you")
    page.get_by_role("button", name="Send comment").click()
    page.get_by_text("your comment was saved").wait_for()
    db = browser_settings.feedback_db
    row = _wait_for_row(db, lambda r: r["question"] == QUESTION and r["comment"] == "Clear and calm, thank you")
    assert row["vote"] == "like"
    assert row["history_len"] == 0
    assert row["answer"] == expected["text"]
    assert row["kind"] == "answer" and row["safety_level"] == "none"
    assert [c["n"] for c in json.loads(row["citations_json"])] == [c["n"] for c in expected["citations"]]
    assert row["app_version"] == assistant.__version__
    assert row["created_at"]

    # A follow-up is answered with the conversation as history; dislike it.
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": expected["text"]}]
    follow = bot.answer(FOLLOW_UP, history).to_dict()
    reply2 = _ask(page, FOLLOW_UP)
    assert _norm(follow["text"].split("[")[0])[:40] in _norm(reply2.inner_text())
    page.get_by_role("button", name="Dislike", exact=True).last.click()
    row2 = _wait_for_row(db, lambda r: r["question"] == FOLLOW_UP)
    assert row2["vote"] == "dislike" and row2["history_len"] == 2 and row2["answer"] == follow["text"]
    # changing one's mind updates that vote: still one row for this reply
    page.get_by_role("button", name="Like", exact=True).last.click()
    changed = _wait_for_row(db, lambda r: r["question"] == FOLLOW_UP and r["vote"] == "like")
    assert changed["id"] == row2["id"]
    assert [r["question"] for r in _rows(db)].count(FOLLOW_UP) == 1
    _shot(page, "desktop-03-follow-up-voted")
    assert page.outside_requests == [], "the page must not reach outside this server"  # type: ignore[attr-defined]


def test_red_flag_banner(open_page):
    page = open_page(DESKTOP)
    reply = _ask(page, RED_FLAG)
    banner = reply.locator(".bp-banner--emergency")
    banner.wait_for(state="visible")
    assert "EMERGENCY" in banner.inner_text()
    assert re.search(r"999|911|112|emergency", banner.inner_text(), re.I)
    assert banner.get_attribute("role") == "alert"
    # the banner is above the reasons, and scrolled into view
    reasons = reply.get_by_text("What raised the concern")
    assert banner.bounding_box()["y"] < reasons.bounding_box()["y"]
    _wait_banner_in_view(page)
    _shot(page, "desktop-04-red-flag")


def test_markup_is_shown_as_text(open_page):
    page = open_page(DESKTOP)
    _ask(page, XSS)
    user_msg = page.locator("#bp-chat .message-row.user-row").last
    assert user_msg.inner_text().strip() == XSS
    assert page.locator("#bp-chat .message-content img").count() == 0
    assert page.locator("#bp-chat img[src='x']").count() == 0
    time.sleep(0.5)
    assert page.dialogs == []  # type: ignore[attr-defined]
    _shot(page, "desktop-05-markup-as-text")


def test_phone_keyboard_only(open_page):
    page = open_page(PHONE)
    # nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    assert page.get_by_text("not medical advice").first.is_visible()
    _shot(page, "phone-01-start")

    # the question box has the focus on arrival; type and press Enter
    assert page.evaluate("document.activeElement && document.activeElement.tagName") == "TEXTAREA"
    reply = _ask(page, QUESTION, keyboard=True)
    assert reply.locator(".bp-sources details").count() >= 1

    # Tab to the first source and open it with Enter
    page.get_by_label("Your question").focus()
    for _ in range(60):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement && document.activeElement.tagName") == "SUMMARY":
            break
    else:
        raise AssertionError("could not reach a source with the keyboard")
    page.keyboard.press("Enter")
    assert page.locator("#bp-chat details[open] .bp-source__quote").first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    _shot(page, "phone-02-answer-source-open")

    # Clear the conversation from the keyboard; the examples come back and can be tapped
    page.get_by_role("button", name="Clear chat").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#bp-chat .message-row').length === 0")
    example = page.get_by_role("button", name=re.compile("What shoes are best"))
    example.wait_for()
    example.click()
    reply = _wait_reply(page, 0)
    assert "shoe" in reply.inner_text().lower()

    reply = _ask(page, RED_FLAG, keyboard=True)
    reply.locator(".bp-banner--emergency").wait_for(state="visible")
    _wait_banner_in_view(page)
    _shot(page, "phone-03-red-flag")
