"""Results: one row per scenario, the printed table, and the JSON file.

The JSON's `scenarios` entries have exactly the keys of the contract in issue 7
(`id`, `ledgerflow`, `baseline`, `ratio`, `unit`, `target`); latencies, peak RSS, whether
the target was met and notes are under `details` (same order), and the run on the
embedded default under `embedded` (same shape).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CONTRACT_KEYS = ("id", "ledgerflow", "baseline", "ratio", "unit", "target")


@dataclass
class Result:
    id: str
    title: str
    ledgerflow: float | None
    baseline: float | None
    ratio: float | None
    unit: str
    target: str
    met: bool | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    baseline_p50_ms: float | None = None
    baseline_p99_ms: float | None = None
    rss_mb: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float | None = None  # wall time the scenario took, harness included

    def contract(self) -> dict[str, Any]:
        return {"id": self.id, "ledgerflow": _round(self.ledgerflow), "baseline": _round(self.baseline),
                "ratio": _round(self.ratio), "unit": self.unit, "target": self.target}

    def detail(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "met": self.met,
            "p50_ms": _round(self.p50_ms), "p99_ms": _round(self.p99_ms),
            "baseline_p50_ms": _round(self.baseline_p50_ms), "baseline_p99_ms": _round(self.baseline_p99_ms),
            "peak_rss_mb": {k: round(v, 1) for k, v in sorted(self.rss_mb.items())},
            "notes": self.notes, "seconds": _round(self.seconds),
        }


def failed(id: str, title: str, unit: str, target: str, error: BaseException) -> Result:
    """A scenario that could not be measured: reported, never raised."""
    return Result(id, title, None, None, None, unit, target, met=None,
                  notes=[f"not measured: {type(error).__name__}: {error}"])


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(f"{value:.{digits}g}") if abs(value) < 1000 else round(value, 1)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def ms(values: Sequence[float]) -> tuple[float | None, float | None]:
    """(p50, p99) in milliseconds of durations given in seconds."""
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return (p50 * 1000 if p50 is not None else None, p99 * 1000 if p99 is not None else None)


# -- output ----------------------------------------------------------------------------------

def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _met(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


def _rss(result: Result) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in sorted(result.rss_mb.items())) or "-"


def table(results: Sequence[Result], title: str) -> str:
    header = ["id", "scenario", "ledgerflow", "baseline", "ratio", "unit", "target", "met",
              "p50 ms", "p99 ms", "base p50/p99 ms", "peak RSS MB"]
    rows = [header]
    for r in results:
        base_lat = "-" if r.baseline_p50_ms is None else f"{_fmt(r.baseline_p50_ms)}/{_fmt(r.baseline_p99_ms)}"
        rows.append([r.id, r.title, _fmt(r.ledgerflow), _fmt(r.baseline), _fmt(r.ratio), r.unit, r.target,
                     _met(r.met), _fmt(r.p50_ms), _fmt(r.p99_ms), base_lat, _rss(r)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [title, "-" * len(title)]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  {r.id}: {note}" for r in results for note in r.notes]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


def markdown(results: Sequence[Result]) -> str:
    """The same table as Markdown (for bench/README.md)."""
    lines = ["| id | scenario | Ledgerflow | baseline | ratio | unit | target | met | p50 / p99 ms | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lat = f"{_fmt(r.p50_ms)} / {_fmt(r.p99_ms)}"
        if r.baseline_p50_ms is not None:
            lat += f" (baseline {_fmt(r.baseline_p50_ms)} / {_fmt(r.baseline_p99_ms)})"
        lines.append(f"| {r.id} | {r.title} | {_fmt(r.ledgerflow)} | {_fmt(r.baseline)} | {_fmt(r.ratio)} | "
                     f"{r.unit} | {r.target} | {_met(r.met)} | {lat} | {_rss(r)} |")
    return "\n".join(lines)


def document(results: Sequence[Result], embedded: Sequence[Result], *, machine: dict[str, Any],
             versions: dict[str, str], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenarios": [r.contract() for r in results],
        "machine": machine,
        "versions": versions,
        "details": [r.detail() for r in results],
        "embedded": {"scenarios": [r.contract() for r in embedded], "details": [r.detail() for r in embedded]},
        **extra,
    }


def write_json(path: str, doc: dict[str, Any]) -> None:
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
