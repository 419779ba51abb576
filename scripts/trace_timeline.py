"""Draw one trace as an SVG timeline (the README's picture of a workflow's trace).

    python scripts/trace_timeline.py spans.json docs/trace-timeline.svg

`spans.json` is what the observability stack test records when LEDGERFLOW_TEST_TRACE_JSON
names a file: the spans an OTLP receiver got, one object each (name, service, span_id,
parent_span_id, start_ns, end_ns). Spans are drawn as a tree (children under their parent,
by start time), one row each, coloured by the process that sent them.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path

ROW, LABEL, BAR, PAD = 22, 430, 560, 10
COLOURS = {"ledgerflow-api": "#4c78a8", "ledgerflow-orchestrator": "#f58518", "ledgerflow-worker": "#54a24b"}


def ordered(spans: list[dict]) -> list[tuple[int, dict]]:
    """(depth, span) in tree order: each span followed by its children, by start time."""
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict]] = {}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else ""
        children.setdefault(parent, []).append(s)
    out: list[tuple[int, dict]] = []

    def walk(parent: str, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda s: (s["start_ns"], s["end_ns"])):
            out.append((depth, s))
            walk(s["span_id"], depth + 1)

    walk("", 0)
    return out


def render(spans: list[dict]) -> str:
    rows = ordered(spans)
    t0 = min(s["start_ns"] for s in spans)
    total = max(max(s["end_ns"] for s in spans) - t0, 1)
    height = PAD * 2 + ROW * (len(rows) + 2)
    width = LABEL + BAR + 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{PAD}" y="{PAD + 12}" font-weight="bold">one workflow, one trace '
             f'({len(rows)} spans, {total / 1e9:.2f} s)</text>']
    for i, (depth, s) in enumerate(rows):
        y = PAD + ROW * (i + 1)
        x = LABEL + (s["start_ns"] - t0) / total * BAR
        w = max((s["end_ns"] - s["start_ns"]) / total * BAR, 2)
        colour = COLOURS.get(s["service"], "#999999")
        label = f'{s["name"]}  [{s["service"].removeprefix("ledgerflow-")}]'
        parts.append(f'<text x="{PAD + depth * 14}" y="{y + 15}">{escape(label)}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{ROW - 8}" fill="{colour}" rx="2"/>')
        ms = (s["end_ns"] - s["start_ns"]) / 1e6
        parts.append(f'<text x="{x + w + 4:.1f}" y="{y + 15}" fill="#555">{ms:.1f} ms</text>')
    y = PAD + ROW * (len(rows) + 1) + 14
    for n, (service, colour) in enumerate(COLOURS.items()):
        parts.append(f'<rect x="{PAD + n * 190}" y="{y - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{PAD + n * 190 + 18}" y="{y}">{service}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.write_text(render(json.loads(source.read_text())))


if __name__ == "__main__":
    main()
