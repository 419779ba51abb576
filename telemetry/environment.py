"""The variables of the libraries telemetry drives: the OpenTelemetry SDK's `OTEL_*` and
prometheus_client's `PROMETHEUS_MULTIPROC_DIR`. Those libraries define them and read them
themselves (their documented contract); Ledgerflow reads the few it decides on (whether to
export, which exporter and protocol, multi-process metrics) here, in `library_variables`, and
nowhere else. Ledgerflow's own settings are read by `ledgerflow.config` only.
"""

from __future__ import annotations

import os

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def library_variables() -> dict[str, str]:
    """The current `OTEL_*` variables and PROMETHEUS_MULTIPROC_DIR (read when called: a
    prefork child or a test may set them after import)."""
    return {k: v for k, v in os.environ.items() if k.startswith("OTEL_") or k == MULTIPROC_DIR}


def set_multiproc_dir(directory: str) -> None:
    """Tell prometheus_client (in this process and the children it forks) where to count."""
    os.environ[MULTIPROC_DIR] = directory
