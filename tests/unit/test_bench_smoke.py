"""The benchmark harness (`python -m bench`) on tiny sizes, so it cannot rot unnoticed.

It runs the embedded-default scenarios end to end in a subprocess (a real runtime and a
real Celery baseline worker, SQLite and the in-memory broker) and checks the JSON contract
of issue 7. It asserts nothing about speed: the benchmark reports, it never fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parents[2]


def test_smoke_run_writes_the_json_contract(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert {"scenarios", "machine", "versions"} <= set(doc)
    assert doc["versions"]["celery"] and doc["machine"]["cpus"]
    embedded = doc["embedded"]["scenarios"]
    assert [s["id"] for s in embedded] == ["P1", "P2", "P3", "P6"]
    for scenario in embedded:
        assert tuple(scenario) == report.CONTRACT_KEYS
        assert scenario["ledgerflow"] is not None and scenario["ratio"] is not None, (scenario, proc.stdout)
    assert "Embedded default" in proc.stdout


def test_table_json_and_percentiles() -> None:
    r = report.Result("P1", "x", 2.0, 1.0, 2.0, "s", "<= 2.0", met=True, p50_ms=1.5, p99_ms=3.0,
                      rss_mb={"orchestrator": 80.0})
    assert tuple(r.contract()) == report.CONTRACT_KEYS
    assert "orchestrator 80" in report.table([r], "t")
    assert report.markdown([r]).count("\n") == 2
    assert report.percentile([3, 1, 2, 4], 50) == 2 and report.percentile([], 50) is None
    assert report.percentile(list(range(1, 101)), 99) == 99
    failed = report.failed("P2", "y", "activities/s", ">= 0.5", RuntimeError("boom"))
    assert failed.contract()["ratio"] is None and "boom" in failed.notes[0]
