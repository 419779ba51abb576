"""Observability shared by every process: OpenTelemetry traces (`telemetry.tracing`),
Prometheus metrics (`telemetry.metrics`) and JSON log lines (`telemetry.logs`).

A layer of its own below the others: the orchestrator, the workers and the SDK facade all
report through it, and it imports no other Ledgerflow package (an import-linter contract).
The OTEL_* and PROMETHEUS_MULTIPROC_DIR variables of the libraries it drives are read in
`telemetry.environment` only.
"""
