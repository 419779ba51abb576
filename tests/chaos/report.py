"""Render the figures a run wrote to $LEDGERFLOW_CHAOS_RESULTS as the Markdown table of
docs/reliability.md:

    LEDGERFLOW_CHAOS_RESULTS=rows.jsonl python -m pytest -m chaos tests/chaos
    python -m tests.chaos.report rows.jsonl
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ORDER = "CNLTBSARD"


def _key(row: dict) -> tuple[int, int, str]:
    name = row["row"]
    digits = re.sub(r"\D", "", name) or "0"
    return (ORDER.find(name[0]) if name[0] in ORDER else 99, int(digits), row["node"])


def render(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = ["| row | result | time | figures |", "|---|---|---|---|"]
    for row in sorted(rows, key=_key):
        figures = "; ".join(f"{k}: {v}" for k, v in row["figures"].items()).replace("|", "\\|")
        lines.append(f"| {row['row']} | {row['outcome']} | {row['seconds']:.0f} s | {figures} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(Path(sys.argv[1])))
