"""``backpain eval --compare OLD/report.json``: what changed between two runs, metric by metric and
case by case, so a change to the corpus or the code shows what it fixed and what it broke."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .datasets import DatasetError

NOISE = 1e-9
# timings vary by a third between runs on a shared machine: only a bigger change is reported
LATENCY_NOISE = 0.35


def load_report(path: Path) -> dict[str, Any]:
    """An earlier run's report.json (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"--compare {path}: no such report (run `backpain eval --out DIR` first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"--compare {path}: not a report.json ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict) or not isinstance(data.get("cases"), list):
        raise DatasetError(f"--compare {path}: not a report.json written by `backpain eval`")
    return data


@dataclass
class MetricChange:
    name: str
    old: float | None
    new: float | None
    higher_is_better: bool

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def verdict(self) -> str:
        d = self.delta
        if d is None:
            return "new" if self.old is None else "gone"
        if abs(d) <= NOISE or (self.name.endswith("_ms") and abs(d) <= LATENCY_NOISE * max(abs(self.old or 0), NOISE)):
            return ""
        return "better" if (d > 0) == self.higher_is_better else "WORSE"

    def to_dict(self) -> dict:
        return {"metric": self.name, "old": self.old, "new": self.new, "delta": self.delta, "verdict": self.verdict}


@dataclass
class Comparison:
    against: str
    metrics: list[MetricChange] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # failed before, pass now
    broken: list[str] = field(default_factory=list)  # passed before, fail now (with the new reason)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"against": self.against, "metrics": [m.to_dict() for m in self.metrics], "fixed": self.fixed,
                "broken": self.broken, "added": self.added, "removed": self.removed}

    def format(self, limit: int = 20) -> str:
        rows = [m for m in self.metrics if m.verdict]
        out = [f"compared with {self.against}:"]
        if rows:
            width = max(len(m.name) for m in rows)
            for m in rows:
                old = "-" if m.old is None else f"{m.old:.3f}"
                new = "-" if m.new is None else f"{m.new:.3f}"
                delta = "" if m.delta is None else f"{m.delta:+.3f}"
                out.append(f"  {m.name.ljust(width)}  {old:>8} -> {new:<8} {delta:>7}  {m.verdict}")
        else:
            out.append("  no metric changed")
        for title, items in (("broken (passed before, fail now)", self.broken), ("fixed (failed before, pass now)", self.fixed),
                             ("new cases", self.added), ("cases no longer in the sets", self.removed)):
            if items:
                out.append(f"{title}: {len(items)}")
                out += [f"  {i}" for i in items[:limit]]
                if len(items) > limit:
                    out.append(f"  ... {len(items) - limit} more")
        out.append(f"{len(self.broken)} broken, {len(self.fixed)} fixed, "
                   f"{sum(m.verdict == 'WORSE' for m in self.metrics)} metrics worse, "
                   f"{sum(m.verdict == 'better' for m in self.metrics)} better")
        return "\n".join(out)


def _metric_value(entry: Any) -> float | None:
    value = entry.get("value") if isinstance(entry, dict) else entry
    return float(value) if isinstance(value, (int, float)) else None


def compare_reports(old: dict[str, Any], new: dict[str, Any], against: str = "the old report") -> Comparison:
    result = Comparison(against=against)
    names = list(dict.fromkeys([*new.get("metrics", {}), *old.get("metrics", {})]))
    for name in names:
        o, n = old["metrics"].get(name), new["metrics"].get(name)
        info = n if isinstance(n, dict) else o if isinstance(o, dict) else {}
        change = MetricChange(name, _metric_value(o), _metric_value(n), bool(info.get("higher_is_better", True)))
        if change.old is not None or change.new is not None:
            result.metrics.append(change)

    def by_key(report: dict) -> dict[str, dict]:
        return {f"{c.get('dataset')}/{c.get('id')}": c for c in report.get("cases", []) if isinstance(c, dict)}

    before, after = by_key(old), by_key(new)
    for key, case in after.items():
        prev = before.get(key)
        if prev is None:
            result.added.append(key)
        elif prev.get("passed") and not case.get("passed"):
            reason = (case.get("reasons") or ["failed"])[0]
            result.broken.append(f"{key}: {reason}")
        elif not prev.get("passed") and case.get("passed"):
            result.fixed.append(key)
    result.removed = [k for k in before if k not in after]
    return result
