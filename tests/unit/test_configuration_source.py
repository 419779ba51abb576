"""One configuration source: only `ledgerflow/config.py` reads Ledgerflow's variables.

Every other module takes its configuration as arguments (`ledgerflow.config.Settings` is read
once by the entry points and passed down). The exceptions are named here, each for a reason:
`telemetry/environment.py` reads the OpenTelemetry SDK's OTEL_* and prometheus_client's
PROMETHEUS_MULTIPROC_DIR (those libraries' own contract), and `orchestrator/faults.py` holds
test-only crash hooks set on a child process.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("ledgerflow", "orchestrator", "workers", "brokers", "persistence", "security", "telemetry")
READS = re.compile(r"\bos\.environ\b|\bgetenv\b|\bfrom\s+os\s+import\b[^\n]*\benviron\b|\bos\.putenv\b")
ALLOWED = {"ledgerflow/config.py", "telemetry/environment.py", "orchestrator/faults.py"}


def _sources() -> list[tuple[str, str]]:
    files = sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))
    return [(p.relative_to(REPO).as_posix(), p.read_text(encoding="utf-8")) for p in files]


def test_only_config_reads_the_environment() -> None:
    readers = {path for path, text in _sources() if READS.search(text)}
    assert "ledgerflow/config.py" in readers  # the scan sees what it should
    assert readers - ALLOWED == set(), (
        "read the variable in ledgerflow/config.py (Settings) and pass the value down as an argument")


def test_the_app_id_fallback_is_written_once() -> None:
    writers = [path for path, text in _sources() if '"APP_ID"' in text]
    assert writers == ["ledgerflow/config.py"]


def test_telemetry_reads_its_libraries_variables_in_one_function() -> None:
    text = (REPO / "telemetry" / "environment.py").read_text(encoding="utf-8")
    reads = [line for line in text.splitlines() if READS.search(line) and "os.environ[" not in line]
    assert len(reads) == 1 and "OTEL_" in reads[0]
