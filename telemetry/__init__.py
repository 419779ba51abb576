"""Observability shared by every process: OpenTelemetry traces (`telemetry.tracing`),
Prometheus metrics (`telemetry.metrics`) and JSON log lines (`telemetry.logs`).

A layer of its own below the others: the orchestrator, the workers and the SDK facade all
report through it, and it imports no other Ledgerflow package (an import-linter contract).
"""
