"""Listing instances for people: filters, keyset pages and counts by status.

A page is found by the position of a row in the sort order (`created_at`, `instance_id`),
not by an offset, so page 2,000 costs what page 1 costs: the indexes on
(`created_at`, `instance_id`) and (`name`, `created_at`) serve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from persistence import ops, records, schema


@dataclass(frozen=True)
class InstanceFilter:
    """Every given field must match; `created_after` is inclusive, `created_before` exclusive."""

    app_id: str | None = None
    name: str | None = None
    statuses: tuple[str, ...] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    id_prefix: str | None = None


@dataclass(frozen=True)
class Position:
    """Where a row stands in the sort order: a page starts after (or before) one."""

    created_at: datetime
    instance_id: str


def where(stmt: sa.Select[Any], f: InstanceFilter, *, with_status: bool = True) -> sa.Select[Any]:
    t = schema.instances
    if f.app_id is not None:
        stmt = stmt.where(t.c.app_id == f.app_id)
    if f.name is not None:
        stmt = stmt.where(t.c.name == f.name)
    if with_status and f.statuses is not None:
        stmt = stmt.where(t.c.status.in_(f.statuses))
    if f.created_after is not None:
        stmt = stmt.where(t.c.created_at >= f.created_after)
    if f.created_before is not None:
        stmt = stmt.where(t.c.created_at < f.created_before)
    if f.id_prefix:
        escaped = f.id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(t.c.instance_id.like(escaped + "%", escape="\\"))
    return stmt


#: What a listed row carries of its payloads: the custom status up to this many characters;
#: input, output and failure are left out (a page is for finding an instance, not reading it).
PREVIEW_CHARS = 200


def _summary_columns() -> list[Any]:
    t = schema.instances
    left_out = {"input", "output", "failure", "signature_head"}
    columns: list[Any] = [sa.null().label(c.name) if c.name in left_out else c for c in t.columns
                          if c.name != "custom_status"]
    return [*columns, sa.func.substr(t.c.custom_status, 1, PREVIEW_CHARS).label("custom_status")]


def page(conn: Connection, f: InstanceFilter, *, newest_first: bool, after: Position | None,
         limit: int) -> list[records.InstanceRecord]:
    """Up to `limit` instances in the order asked, starting just past `after`, without their
    payloads (see `PREVIEW_CHARS`)."""
    t = schema.instances
    stmt = where(sa.select(*_summary_columns()), f)
    key = sa.tuple_(t.c.created_at, t.c.instance_id)
    if after is not None:
        mark = sa.tuple_(sa.literal(after.created_at, schema.UTCDateTime()), sa.literal(after.instance_id))
        stmt = stmt.where(key < mark if newest_first else key > mark)
    order = (t.c.created_at.desc(), t.c.instance_id.desc()) if newest_first else (t.c.created_at, t.c.instance_id)
    return [ops.to_instance(r) for r in conn.execute(stmt.order_by(*order).limit(limit))]


def count_by_status(conn: Connection, f: InstanceFilter) -> dict[str, int]:
    """How many instances match `f` in each status (the status filter left out)."""
    t = schema.instances
    stmt = where(sa.select(t.c.status, sa.func.count()), f, with_status=False).group_by(t.c.status)
    return {status: count for status, count in conn.execute(stmt)}
