"""What a clock that skips ahead must know first: is any work in flight, and when is the next
timer due. Read in one transaction, so the answer is one consistent snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from persistence import schema
from persistence.records import OUTBOX_ACTIVITY, STALLED
from persistence.store import Store


@dataclass(frozen=True)
class Lull:
    #: an inbox message visible at `now` (of an instance that can run) or an activity call out
    busy: bool
    #: the earliest timer of any instance, due or not
    next_timer: datetime | None


def lull(store: Store, now: datetime) -> Lull:
    inbox, instances, outbox, timers = schema.inbox, schema.instances, schema.outbox, schema.timers
    visible = (sa.select(inbox.c.id)
               .join(instances, instances.c.instance_id == inbox.c.instance_id)
               .where(inbox.c.visible_at <= now, instances.c.status != STALLED)
               .limit(1))
    calls = sa.select(outbox.c.id).where(outbox.c.kind == OUTBOX_ACTIVITY).limit(1)
    earliest = sa.select(timers.c.fire_at).order_by(timers.c.fire_at).limit(1)
    with store.engine.connect() as conn, conn.begin():
        busy = conn.execute(visible).first() is not None or conn.execute(calls).first() is not None
        return Lull(busy, conn.execute(earliest).scalar())
