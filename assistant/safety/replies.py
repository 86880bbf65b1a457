"""The reply to a red flag: what to do and how soon, then the person's own words that raised it."""

from __future__ import annotations

import re

from ..results import SafetyResult
from .rules import label

INFO_REQUEST_NOTE = (
    "If you or someone else has any of these symptoms, please don't wait: see a doctor (GP) within a day "
    "or two, or go to A&E / call the emergency number (999, 911 or 112) straight away for numbness between "
    "the legs, new bladder or bowel problems, sudden leg weakness, chest pain or breathlessness."
)


_EMERGENCY_HEAD = (
    "**Please get medical help now: go to A&E (an emergency department) or call the emergency number "
    "\u2014 999 in the UK, 911 in the US, 112 in Europe.** Please don't wait to see whether it settles."
)
_EMERGENCY_TAIL = (
    "It may turn out to be something simple, but these signs need to be checked in person today. "
    "I'm sorry you're dealing with this \u2014 getting seen quickly is the right thing to do."
)
_URGENT_HEAD = (
    "**Please see a doctor in the next day or two.** Book an appointment with your GP (family doctor), "
    "or an urgent care or out-of-hours service if you can't get one, and hold off on the plan you asked "
    "about until you've been checked."
)
_URGENT_TAIL = (
    "This isn't an emergency on its own, but a doctor should look at it soon. If things change quickly \u2014 "
    "new numbness between your legs or around your bottom, trouble peeing or controlling your bladder or "
    "bowels, or a leg becoming weak \u2014 go to A&E or call 999 / 911 / 112 straight away."
)

# When the screen is unsure whether it is an emergency: the signs that would make it one, to check now.
_EMERGENCY_SIGNS = (
    "**Check these now. If any of them is true, go to A&E or call 999 / 911 / 112 straight away:**\n"
    "- numbness or a changed feeling between your legs, around your bottom or genitals\n"
    "- trouble passing urine, or not being able to control or feel your bladder or bowels\n"
    "- a leg, or both legs, getting weak or giving way, or numbness or tingling in both legs\n"
    "- a fever or shivering, and feeling very unwell\n"
    "- chest pain or tightness, breathlessness, cold sweats, a pulsing in your tummy or a sudden tearing pain\n"
    "- a recent fall, accident or hard knock"
)


def _quote(words: str, limit: int = 90) -> str:
    words = " ".join(str(words).split())
    words = re.sub(r"[*_`#<>\[\]|]", "", words)
    if len(words) > limit:
        words = words[: limit - 1].rsplit(" ", 1)[0] + "\u2026"
    return f"\u201c{words}\u201d"


def red_flag_reply(result: SafetyResult) -> str:
    """Markdown for a kind='red_flag' reply: what to do and how soon, then the words that raised it.

    No walking or exercise advice; the caller appends cited warning-sign passages from the corpus.
    """
    emergency = result.level == "emergency"
    parts = [_EMERGENCY_HEAD if emergency else _URGENT_HEAD]
    lines = []
    seen = set()
    for r in result.reasons:
        key = (r.category, r.matched)
        if key in seen:
            continue
        seen.add(key)
        when = "earlier, you mentioned " if r.detector == "history" else "you mentioned "
        lines.append(f"- {when}{_quote(r.matched)} \u2014 {label(r.category)}")
    if lines:
        parts.append("What raised the concern:\n" + "\n".join(lines))
    if emergency:
        parts.append(_EMERGENCY_TAIL)
    elif result.unsure:
        parts.append(_EMERGENCY_SIGNS)
    else:
        parts.append(_URGENT_TAIL)
    return "\n\n".join(parts)

