"""Pieces of persistence that need no database: URLs, records, errors, datetimes."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from persistence import engine, errors, records, schema
from persistence.store import Store


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5/db", "postgresql+psycopg://u:***@h:5/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x/y.db", "sqlite:///x/y.db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert engine.normalize_url(url).render_as_string(hide_password=True) == expected


def test_store_hides_the_password() -> None:
    store = Store("postgres://user:secret@127.0.0.1:1/db")
    assert "secret" not in store.url and "secret" not in repr(store)
    store.close()


@pytest.mark.parametrize("url", ["mysql://h/db", "oracle://h/db"])
def test_unsupported_dialects_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        Store(url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="in-memory SQLite"):
        Store(url)


def test_sqlite_store_creates_its_directory_and_uses_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a" / "b" / "state.db"
    with Store(f"sqlite:///{path}") as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    assert path.exists()


def test_records_are_frozen() -> None:
    msg = records.NewInboxMessage("m", "EventRaised", "{}")
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.type = "x"  # type: ignore[misc]
    assert records.NewOutbox("app", "orchestrate", "{}").instance_id is None


def test_instance_record_fields_match_the_table() -> None:
    assert list(records.INSTANCE_COLUMNS) == [c.name for c in schema.instances.columns]


def test_error_messages_say_what_to_do() -> None:
    assert str(errors.InstanceAlreadyExists("abc", "RUNNING")) == (
        "workflow instance 'abc' already exists and is RUNNING; "
        "terminate or purge it first, or use another instance ID"
    )
    assert "purged" in str(errors.InstanceNotFound("abc"))
    assert "terminate it" in str(errors.InstanceNotTerminal("abc", "RUNNING"))
    assert "retry" in str(errors.StoreUnavailable("sqlite:///x", "disk I/O error"))
    assert "retry" in str(errors.HistoryConflict("abc", 0, [3]))
    for cls in (errors.InstanceNotFound, errors.InstanceAlreadyExists,
                errors.InstanceNotTerminal, errors.StoreUnavailable, errors.HistoryConflict):
        assert issubclass(cls, errors.PersistenceError)


aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                               timezone(timedelta(hours=-8))]),
)


@given(aware)
def test_utc_datetime_round_trips_on_both_dialects(value: datetime) -> None:
    column_type = schema.UTCDateTime()
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        stored = column_type.process_bind_param(value, dialect)
        assert stored is not None
        if dialect.name == "sqlite":
            assert stored.tzinfo is None  # naive UTC text: text order is time order
        back = column_type.process_result_value(stored, dialect)
        assert back == value and back.tzinfo == timezone.utc


def test_naive_datetimes_are_taken_as_utc() -> None:
    naive = datetime(2030, 1, 2, 3, 4, 5)
    assert records.as_utc(naive) == naive.replace(tzinfo=timezone.utc)
