"""Ledgerflow's benchmarks, each beside a raw-Celery baseline measured in the same run (issue 7)."""
