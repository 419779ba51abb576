"""The replay engine: pure functions of (workflow code, history) -> (events, actions).

Standard library only (an import-linter contract in pyproject.toml holds this line).
"""
