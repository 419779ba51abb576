"""Shared pytest configuration for the Ledgerflow test suite.

The fixtures live in ``tests/fixtures/`` as pytest plugins so each one can be read
(and reused) on its own. Add new fixture modules to ``pytest_plugins`` below.
"""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.processes",
    "tests.fixtures.redis",
    "tests.fixtures.chaos",
]

import logging  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _logging_restored():
    """A test that runs the CLI in-process (`configure_logging`) leaves the `ledgerflow` logger
    not propagating, so a later test's caplog, in the same process, would see nothing: put the
    loggers back as they were after each test."""
    ours = logging.getLogger("ledgerflow")
    handlers, level, propagate = ours.handlers[:], ours.level, ours.propagate
    yield
    ours.handlers[:], ours.level, ours.propagate = handlers, level, propagate
