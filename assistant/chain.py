"""The answering pipeline: validate -> safety -> retrieve -> compose, also as a LangChain runnable.

Each step takes and returns a ``Turnstate``; a step that settles the answer (bad input, red flag,
off-topic) sets ``result`` and the later steps pass it through untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .results import AnswerResult, SafetyResult, Turn

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from .api import Assistant


@dataclass
class Turnstate:
    message: Any
    raw_history: Any = None  # as given; the validate step keeps the valid turns in ``history``
    history: tuple[Turn, ...] = ()
    text: str = ""
    safety: SafetyResult = field(default_factory=SafetyResult)
    query: Any = None
    retrieved: Any = None
    result: AnswerResult | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)


def _as_state(inp: Any) -> Turnstate:
    if isinstance(inp, Turnstate):
        return inp
    if isinstance(inp, dict):
        return Turnstate(message=inp.get("question", inp.get("message")), raw_history=inp.get("history"))
    return Turnstate(message=inp)


def _timed(name: str, fn: Callable[[Turnstate], Turnstate]) -> Callable[[Any], Turnstate]:
    def step(state: Any) -> Turnstate:
        state = _as_state(state)
        if state.result is not None:
            return state
        t = time.perf_counter()
        out = fn(state)
        state.timings_ms[name] = (time.perf_counter() - t) * 1000
        return out

    step.__name__ = name
    return step


def _finish(state: Turnstate) -> AnswerResult:
    result = state.result
    if result is None:
        raise RuntimeError("pipeline ended without a result")
    result.timings_ms = {**state.timings_ms, "total": (time.perf_counter() - state.started) * 1000}
    return result


def pipeline_steps(bot: "Assistant") -> list[Callable[[Any], Turnstate]]:
    return [
        _timed("validate", bot.step_validate),
        _timed("safety", bot.step_safety),
        _timed("retrieve", bot.step_retrieve),
        _timed("compose", bot.step_compose),
    ]


def run_pipeline(steps: list[Callable[[Any], Turnstate]], inp: Any) -> AnswerResult:
    """The same steps as the runnable, called in a plain loop: LCEL's per-step bookkeeping costs
    about 4 ms a question on a 2-core CPU, as much as the rest of the pipeline without the model."""
    state: Any = inp
    for step in steps:
        state = step(state)
    return _finish(state)


def build_chain(steps: list[Callable[[Any], Turnstate]]) -> "Runnable":
    """``{"question": str, "history": [...]}`` (or a bare string) in, ``AnswerResult`` out.

    LangChain is imported here, not at module load: it adds about a second to start-up and only
    callers that want the runnable need it."""
    from langchain_core.runnables import RunnableLambda

    chain = RunnableLambda(steps[0], name=steps[0].__name__)
    for step in steps[1:]:
        chain = chain | RunnableLambda(step, name=step.__name__)
    return (chain | RunnableLambda(_finish, name="result")).with_config(run_name="backpain_answer")
