"""Which Celery broker URLs are Redis (or in-memory): the one place that decides it.

Every Redis-only part (the change feed's pub/sub, liveness and recovery, activity limits, the
workers' call memory) asks `redis_url`, so each supports the same schemes: plain and TLS
(`redis://`, `rediss://`) and Unix sockets (`redis+socket://`, `unix://`).
"""

from __future__ import annotations


def redis_url(broker_url: str) -> str | None:
    """The redis-py URL of a Celery broker URL, or None if the broker is not Redis."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return broker_url
    if broker_url.startswith("redis+socket://"):
        return "unix://" + broker_url[len("redis+socket://"):]
    return None


def is_memory(broker_url: str) -> bool:
    """Celery's in-memory transport (the embedded default, `memory://`)."""
    return broker_url.startswith("memory://")


def uses_own_transport(broker_url: str) -> bool:
    """Whether the Celery app uses `brokers.redis_transport` for this Redis broker: plain
    `redis://` only. Naming a transport explicitly stops kombu from turning TLS on for
    `rediss://` (it does that by the scheme's name), and a `redis+socket://` URL names kombu's
    own transport in its prefix, which wins over the setting."""
    return broker_url.startswith("redis://")
