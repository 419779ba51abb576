from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence.store import Store
from security import context as sec_context
from tests.integration.security import apps


@pytest.fixture(autouse=True)
def _fresh_security_cache() -> Iterator[None]:
    sec_context.reset_cache()
    apps.CALLS.clear()
    yield
    sec_context.reset_cache()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'lf.db'}")
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    return tmp_path / "certs"
