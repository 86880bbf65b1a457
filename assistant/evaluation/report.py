"""The summary table, report.md, report.json and the PNG plots."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from . import matching as m
from .metrics import LEVEL_ORDER, REGISTRY, CaseRecord, confusion_matrix, safety_case_ok, scope_case_ok
from .runner import EvalRun

GE, LE = "\u2265", "\u2264"
GROUP_ORDER = ("retrieval", "citations", "answers", "safety", "latency", "robustness")


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "n":
        return f"{value:.0f}"
    return f"{value:.3f}"


def _ordered_metrics(run: EvalRun) -> list[str]:
    names = [n for n in REGISTRY if n in run.metrics]
    return sorted(names, key=lambda n: (GROUP_ORDER.index(REGISTRY[n].group) if REGISTRY[n].group in GROUP_ORDER else 99, names.index(n)))


def _checks_by_metric(run: EvalRun) -> dict:
    return {c.metric: c for c in run.checks}


# ---------------------------------------------------------------- stdout


def format_summary(run: EvalRun) -> str:
    base_names = list(run.baselines)
    checks = _checks_by_metric(run)
    header = ["metric", "assistant"] + base_names + ["threshold", "status"]
    rows = []
    for name in _ordered_metrics(run):
        metric = REGISTRY[name]
        row = [name, _fmt(run.metrics[name], metric.unit)]
        for b in base_names:
            row.append(_fmt(run.baselines[b]["metrics"].get(name), metric.unit) if metric.baseline else "")
        c = checks.get(name)
        if c:
            row += [("\u2265 " if c.direction == "min" else "\u2264 ") + _fmt(c.limit, metric.unit), "ok" if c.passed else "FAIL"]
        else:
            row += ["", ""]
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
    c = run.counts
    out.append("")
    out.append(
        f"{c.get('answerable', 0)} answerable + {c.get('unanswerable', 0)} unanswerable QA "
        f"({c.get('multi_turn', 0)} multi-turn), {c.get('scope_total', 0)} scope, "
        f"{c.get('safety_total', 0)} safety cases; {len(failed_cases(run))} failed cases; "
        f"{run.info.get('duration_s', 0):.1f} s"
    )
    for n in run.notes:
        out.append(f"note: {n}")
    return "\n".join(out)


# ---------------------------------------------------------------- failures


def case_failures(r: CaseRecord) -> list[str]:
    """Why a case counts as failed (empty: it passed)."""
    if r.error:
        return [f"answer() raised {r.error}"]
    reasons: list[str] = []
    if r.dataset == "qa":
        case = r.case
        if case.answerable:  # type: ignore[union-attr]
            if r.kind != "answer":
                reasons.append(f"not answered (kind={r.kind})")
            if r.first_rank is None or r.first_rank > 5:
                reasons.append("no evidence passage in the top 5 contexts")
            elif r.first_rank > 3:
                reasons.append(f"evidence only at rank {r.first_rank}")
            missing = [g for g, ok in zip(case.key_facts, r.key_fact_hits) if not ok]  # type: ignore[union-attr]
            if missing:
                reasons.append("key facts missing: " + "; ".join(" / ".join(g) for g in missing))
            if r.kind == "answer" and not r.cites_evidence:
                reasons.append("no cited quote contains an evidence passage")
        elif r.kind != case.expected_kind:  # type: ignore[union-attr]
            reasons.append(f"expected {case.expected_kind}, got {r.kind}")  # type: ignore[union-attr]
        if r.kind == "answer":
            bad = [f"[{n}]" for n, _, _, ok in r.marker_support if not ok]
            if bad:
                reasons.append("citation markers not supported by their quote: " + " ".join(bad))
    elif r.dataset == "scope":
        if not scope_case_ok(r):
            if r.kind != r.case.expected_kind:  # type: ignore[union-attr]
                reasons.append(f"expected {r.case.expected_kind}, got {r.kind}")  # type: ignore[union-attr]
            if r.forbidden_found:
                reasons.append("reply contains forbidden text: " + ", ".join(repr(s) for s in r.forbidden_found))
    elif r.dataset == "safety":
        if not safety_case_ok(r):
            reasons.append(f"expected safety level {r.case.expected_level}, got {r.level}")  # type: ignore[union-attr]
        want_kind = getattr(r.case, "expected_kind", None)
        if want_kind and r.kind != want_kind:
            reasons.append(f"expected kind {want_kind}, got {r.kind}")
    return reasons


def format_failures(run: EvalRun, limit: int = 20) -> str:
    """pytest's short summary: one line per failed case, its set, id and first reason."""
    failed = failed_cases(run)
    if not failed:
        return ""
    out = [f"failed cases ({len(failed)}):"]
    for r, reasons in failed[:limit]:
        more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
        out.append(f"FAILED {r.dataset}/{r.case.id}: {reasons[0]}{more} | {_inline(r.case.prompt, 70)}")
    if len(failed) > limit:
        out.append(f"... {len(failed) - limit} more in report.md (--max-failures to show more)")
    return "\n".join(out)


def failed_cases(run: EvalRun) -> list[tuple[CaseRecord, list[str]]]:
    out = []
    for r in run.records:
        reasons = case_failures(r)
        if reasons:
            out.append((r, reasons))
    return out


# ---------------------------------------------------------------- breakdowns


def retrieval_breakdown(run: EvalRun) -> list[dict[str, Any]]:
    """hit@3 by article and by single/multi-turn, for the assistant and each baseline."""
    systems = {"assistant": run.records} | {b: v["records"] for b, v in run.baselines.items()}
    rows: dict[str, dict[str, Any]] = {}
    for system, records in systems.items():
        groups: dict[str, list[float]] = defaultdict(list)
        for r in records:
            if not r.is_answerable:
                continue
            hit = m.hit_at_k(r.first_rank, 3)
            for s in r.case.sources:  # type: ignore[union-attr]
                groups[s].append(hit)
            groups["multi-turn" if r.case.multi_turn else "single-turn"].append(hit)  # type: ignore[union-attr]
        for g, hits in groups.items():
            rows.setdefault(g, {"group": g, "n": len(hits)})[system] = sum(hits) / len(hits)
    order = sorted(k for k in rows if k.endswith(".md")) + [k for k in ("single-turn", "multi-turn") if k in rows]
    return [rows[k] for k in order]


def stage_timings(records: Sequence[CaseRecord]) -> dict[str, float]:
    """Mean of each ``timings_ms`` entry the API reports, over the calls that report it."""
    sums: dict[str, list[float]] = defaultdict(list)
    for r in records:
        for k, v in (r.result.get("timings_ms") or {}).items():
            if isinstance(v, (int, float)):
                sums[k].append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items()}


# ---------------------------------------------------------------- report.md


def _quote_block(text: str, limit: int = 1500) -> str:
    text = (text or "").strip()
    if len(text) > limit:
        text = text[:limit] + " \u2026"
    if not text:
        return "> *(empty)*"
    return "\n".join("> " + line if line.strip() else ">" for line in text.splitlines())


def _inline(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    text = text[:limit] + (" \u2026" if len(text) > limit else "")
    return text.replace("|", "\\|").replace("`", "'")


def _case_prompt(r: CaseRecord) -> str:
    prompt = r.case.prompt
    if len(prompt) > 300:
        prompt = prompt[:300] + f" \u2026 ({len(prompt)} characters)"
    return prompt if prompt.strip() else repr(prompt)


def render_markdown(run: EvalRun) -> str:
    checks = _checks_by_metric(run)
    failed = failed_cases(run)
    lines: list[str] = []
    add = lines.append
    status = "PASS" if run.passed else "FAIL"
    add("# Evaluation report")
    add("")
    add(f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} in {run.info.get('duration_s', 0):.1f} s. "
        f"Thresholds: **{status}** ({len(run.checks) - len(run.failed_checks)}/{len(run.checks)} met).")
    add("")
    c = run.counts
    add(f"Cases: {c.get('answerable', 0)} answerable QA ({c.get('multi_turn_answerable', 0)} multi-turn), "
        f"{c.get('unanswerable', 0)} unanswerable, {c.get('scope_total', 0)} scope, {c.get('safety_total', 0)} safety. "
        f"Corpus: {', '.join(run.info.get('corpus_files', []))}.")
    for n in run.notes:
        add("")
        add(f"*Note: {n}*")
    add("")
    add("## Summary")
    add("")
    add("| group | metric | value | threshold | status | what it measures |")
    add("|---|---|---|---|---|---|")
    for name in _ordered_metrics(run):
        metric = REGISTRY[name]
        ck = checks.get(name)
        thr = (("\u2265 " if ck.direction == "min" else "\u2264 ") + _fmt(ck.limit, metric.unit)) if ck else ""
        st = ("ok" if ck.passed else "**FAIL**") if ck else ""
        add(f"| {metric.group} | {name} | {_fmt(run.metrics[name], metric.unit)} | {thr} | {st} | {metric.description} |")
    add("")
    add("![metrics against baselines](metrics_vs_baselines.png)")
    add("")

    if run.baselines:
        add("## Retrieval against the baselines")
        add("")
        add("Same answerable questions; baselines see the question without the history. "
            "A context is a hit when it holds at least 60% of an evidence passage's words in runs of 3+ in order.")
        add("")
        names = list(run.baselines)
        add("| metric | assistant | " + " | ".join(names) + " | lead over best baseline |")
        add("|---|---|" + "---|" * len(names) + "---|")
        for name in _ordered_metrics(run):
            if not REGISTRY[name].baseline:
                continue
            ours = run.metrics.get(name)
            theirs = [run.baselines[b]["metrics"].get(name) for b in names]
            best = max((t for t in theirs if t is not None), default=None)
            lead = f"{ours - best:+.3f}" if ours is not None and best is not None else "n/a"
            add(f"| {name} | {_fmt(ours)} | " + " | ".join(_fmt(t) for t in theirs) + f" | {lead} |")
        add("")
        for b in names:
            v = run.baselines[b]
            add(f"- **{b}**: {v['label']}; {v['chunks']} chunks; {v['mean_query_ms']:.1f} ms a query.")
        add("")
        add("hit@3 by article and by turn type:")
        add("")
        add("| group | n | assistant | " + " | ".join(names) + " |")
        add("|---|---|---|" + "---|" * len(names))
        for row in retrieval_breakdown(run):
            add(f"| {row['group']} | {row['n']} | {_fmt(row.get('assistant'))} | " + " | ".join(_fmt(row.get(b)) for b in names) + " |")
        add("")

    add("## Thresholds")
    add("")
    if run.checks:
        add("| metric | value | threshold | status |")
        add("|---|---|---|---|")
        for ck in run.checks:
            unit = REGISTRY[ck.metric].unit
            add(f"| {ck.metric} | {_fmt(ck.value, unit)} | {GE if ck.direction == 'min' else LE} {_fmt(ck.limit, unit)} | {'ok' if ck.passed else '**FAIL**'} |")
    else:
        add("No thresholds were checked.")
    add("")

    safety = [r for r in run.records if r.dataset == "safety"]
    if safety:
        add("## Safety")
        add("")
        cm = confusion_matrix(run.records)
        add("Rows: expected level; columns: level returned.")
        add("")
        add("| expected \\ returned | " + " | ".join(LEVEL_ORDER) + " |")
        add("|---|" + "---|" * len(LEVEL_ORDER))
        for want in LEVEL_ORDER:
            add(f"| {want} | " + " | ".join(str(cm[want][got]) for got in LEVEL_ORDER) + " |")
        add("")
        add("![safety confusion matrix](safety_confusion.png)")
        add("")

    lat = [r.latency_ms for r in run.records if r.latency_ms is not None]
    if lat:
        add("## Latency")
        add("")
        add(f"{len(lat)} calls; p50 {_fmt(m.percentile(lat, 50), 'ms')}, p95 {_fmt(m.percentile(lat, 95), 'ms')}, "
            f"max {_fmt(max(lat), 'ms')}; first (warm-up) call {run.info.get('warm_up_ms', 0):.0f} ms, not counted.")
        add("")
        stages = stage_timings(run.records)
        if stages:
            add("Mean time per pipeline stage (from `timings_ms`): " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items()) + ".")
            add("")
        add("![latency histogram](latency_hist.png)")
        add("")

    add(f"## Failed cases ({len(failed)})")
    add("")
    if not failed:
        add("None.")
    for r, reasons in failed:
        add(f"### {r.dataset} / {r.case.id}")
        add("")
        if r.case.history:
            add("History:")
            add("")
            for t in r.case.history:
                add(f"- *{t['role']}*: {_inline(t['content'], 300)}")
            add("")
        add(f"**Question:** {_inline(_case_prompt(r), 400)}")
        add("")
        add("**Why it failed:** " + "; ".join(reasons))
        add("")
        if r.dataset == "qa" and r.case.evidence:  # type: ignore[union-attr]
            add("**Expected evidence** (" + ", ".join(r.case.sources) + "):")  # type: ignore[union-attr]
            add("")
            for p, rank in zip(r.case.evidence, r.passage_ranks):  # type: ignore[union-attr]
                where = f"rank {rank}" if rank else "not retrieved"
                add(f"- \u201c{_inline(p, 300)}\u201d ({where})")
            add("")
        if r.dataset == "scope":
            add(f"**Expected:** {r.case.expected_kind} \u2014 {r.case.why}")  # type: ignore[union-attr]
            add("")
        if r.dataset == "safety":
            add(f"**Expected level:** {r.case.expected_level}; returned {r.level}: " + "; ".join(map(str, (r.result.get('safety') or {}).get('reasons', []))))  # type: ignore[union-attr]
            add("")
        ctx = r.contexts[:3]
        if ctx:
            add("**Retrieved (top 3):**")
            add("")
            for i, c in enumerate(ctx, start=1):
                add(f"{i}. `{c.get('source', '')}` \u2014 *{_inline(c.get('section', ''), 120)}* (score {c.get('score', 0)}): {_inline(c.get('text', ''))}")
            add("")
        add(f"**Reply** (kind `{r.kind}`, safety `{r.level}`):")
        add("")
        add(_quote_block(r.text))
        add("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- report.json


def _record_json(r: CaseRecord, reasons: list[str]) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": r.case.id,
        "dataset": r.dataset,
        "kind": r.kind,
        "latency_ms": round(r.latency_ms, 2) if r.latency_ms is not None else None,
        "timings_ms": r.result.get("timings_ms") or {},
        "passed": not reasons,
        "reasons": reasons,
    }
    if r.dataset == "qa":
        d["expected_kind"] = r.case.expected_kind  # type: ignore[union-attr]
        if r.is_answerable:
            d["first_rank"] = r.first_rank
            d["passage_ranks"] = r.passage_ranks
            d["key_facts_found"] = r.key_fact_hits
            d["cites_evidence"] = r.cites_evidence
        d["markers"] = [{"n": n, "overlap": round(o, 3), "supported": ok} for n, _, o, ok in r.marker_support]
    elif r.dataset == "scope":
        d["expected_kind"] = r.case.expected_kind  # type: ignore[union-attr]
        d["forbidden_found"] = r.forbidden_found
    elif r.dataset == "safety":
        d["expected_level"] = r.case.expected_level  # type: ignore[union-attr]
        d["level"] = r.level
    if reasons:
        d["question"] = r.case.prompt[:2000]
        d["history"] = list(r.case.history)
        d["text"] = r.text
        d["contexts"] = [{k: c.get(k) for k in ("source", "section", "score")} | {"text": str(c.get("text", ""))[:300]} for c in r.contexts[:3]]
    return d


def render_json(run: EvalRun) -> dict[str, Any]:
    checks = run.checks
    return {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "passed": run.passed,
        "metrics": {
            n: {"value": run.metrics[n], "group": REGISTRY[n].group, "higher_is_better": REGISTRY[n].higher_is_better,
                "description": REGISTRY[n].description}
            for n in _ordered_metrics(run)
        },
        "baselines": {
            b: {"label": v["label"], "chunks": v["chunks"], "mean_query_ms": round(v["mean_query_ms"], 2), "metrics": v["metrics"]}
            for b, v in run.baselines.items()
        },
        "retrieval_breakdown": retrieval_breakdown(run),
        "thresholds": [
            {"metric": c.metric, "value": c.value, "limit": c.limit, "direction": c.direction, "passed": c.passed} for c in checks
        ],
        "safety_confusion": confusion_matrix(run.records),
        "counts": run.counts,
        "notes": run.notes,
        "info": run.info,
        "stage_timings_ms": {k: round(v, 2) for k, v in stage_timings(run.records).items()},
        "hit_rule": {
            "coverage": m.HIT_COVERAGE, "min_block": m.MIN_BLOCK,
            "quote_inside_coverage": m.QUOTE_INSIDE_COVERAGE, "support_overlap": m.SUPPORT_OVERLAP,
        },
        "cases": [_record_json(r, case_failures(r)) for r in run.records],
    }


# ---------------------------------------------------------------- plots


def _plots(run: EvalRun, out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}

    # metric bars: retrieval against the baselines (left), the assistant's other scores (right)
    shares = [n for n in _ordered_metrics(run) if REGISTRY[n].unit == "" and run.metrics.get(n) is not None]
    retrieval = [n for n in shares if REGISTRY[n].baseline]
    others = [n for n in shares if not REGISTRY[n].baseline]
    systems = ["assistant"] + list(run.baselines)
    colours = {"assistant": "#1b6ca8", "dense_1000": "#f0a202", "bm25_1000": "#8c8c8c"}
    limits = {c.metric: c.limit for c in run.checks}

    def bars(ax, names, series):
        width = 0.8 / len(series)
        for i, s in enumerate(series):
            vals = [run.metrics.get(n) if s == "assistant" else run.baselines[s]["metrics"].get(n) for n in names]
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
            drawn = ax.bar(xs, [v or 0 for v in vals], width, label=s, color=colours.get(s))
            for b, v in zip(drawn, vals):
                if v is not None:
                    ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 0.015, f"{v:.2f}", ha="center",
                            va="bottom", fontsize=7, rotation=90 if len(series) > 1 else 0)
        for j, n in enumerate(names):
            if n in limits:
                ax.hlines(limits[n], j - 0.45, j + 0.45, colors="#c0392b", linestyles="dashed", linewidth=1.2)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.set_ylim(0, 1.18)

    panels = [(retrieval, systems, "Retrieval: assistant against the baselines"),
              (others, ["assistant"], "Citations, answers, safety (fp rate: lower is better)")]
    panels = [p for p in panels if p[0]]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(13, 4.8), dpi=110, squeeze=False,
                             gridspec_kw={"width_ratios": [max(1, len(p[0])) for p in panels] or [1]})
    for ax, (names, series, title) in zip(axes[0], panels):
        bars(ax, names, series)
        ax.set_title(title, fontsize=10)
        if len(series) > 1:
            ax.set_ylim(0, 1.32)
            ax.legend(fontsize=8, loc="upper left", ncol=len(series))
    axes[0][0].set_ylabel("score (dashed red: threshold)")
    fig.tight_layout()
    paths["metrics_png"] = out_dir / "metrics_vs_baselines.png"
    fig.savefig(paths["metrics_png"])
    plt.close(fig)

    # latency histogram
    by_set: dict[str, list[float]] = defaultdict(list)
    for r in run.records:
        if r.latency_ms is not None:
            by_set[r.dataset].append(r.latency_ms)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if by_set:
        ax.hist([by_set[k] for k in by_set], bins=30, stacked=True, label=list(by_set))
        for q, style in ((50, "-"), (95, "--")):
            v = run.metrics.get(f"latency_p{q}_ms")
            if v is not None:
                ax.axvline(v, color="black", linestyle=style, linewidth=1, label=f"p{q} {v:.0f} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel("answer() time per call (ms)")
    ax.set_ylabel("calls")
    ax.set_title("Latency")
    fig.tight_layout()
    paths["latency_png"] = out_dir / "latency_hist.png"
    fig.savefig(paths["latency_png"])
    plt.close(fig)

    # safety confusion matrix
    cm = confusion_matrix(run.records)
    levels = list(LEVEL_ORDER)
    grid = [[cm[w][g] for g in levels] for w in levels]
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=110)
    ax.imshow(grid, cmap="Blues")
    top = max((v for row in grid for v in row), default=0)
    for i in range(len(levels)):
        for j in range(len(levels)):
            ax.text(j, i, str(grid[i][j]), ha="center", va="center", color="white" if top and grid[i][j] > top / 2 else "black")
    ax.set_xticks(range(len(levels)), levels)
    ax.set_yticks(range(len(levels)), levels)
    ax.set_xlabel("returned level")
    ax.set_ylabel("expected level")
    ax.set_title("Safety levels" if any(r.dataset == "safety" for r in run.records) else "Safety levels (no safety set)")
    fig.tight_layout()
    paths["safety_png"] = out_dir / "safety_confusion.png"
    fig.savefig(paths["safety_png"])
    plt.close(fig)
    return paths


def write_report(run: EvalRun, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "report.md", "json": out_dir / "report.json"}
    paths["md"].write_text(render_markdown(run), encoding="utf-8")
    paths["json"].write_text(json.dumps(render_json(run), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths.update(_plots(run, out_dir))
    return paths
