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
