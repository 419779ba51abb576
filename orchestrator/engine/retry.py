"""Retry policies and the arithmetic of the delay before the next attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, init=False)
class RetryPolicy:
    """Dapr's RetryPolicy: `max_number_of_attempts` counts the first try; the delay before
    attempt k+1 is `first_retry_interval * backoff_coefficient ** (k - 1)`, capped by
    `max_retry_interval`; no retry starts once `retry_timeout` of workflow time has passed
    since the first attempt."""

    first_retry_interval: timedelta
    max_number_of_attempts: int
    backoff_coefficient: float | None
    max_retry_interval: timedelta | None
    retry_timeout: timedelta | None

    def __init__(
        self,
        *,
        first_retry_interval: timedelta,
        max_number_of_attempts: int,
        backoff_coefficient: float | None = 1.0,
        max_retry_interval: timedelta | None = None,
        retry_timeout: timedelta | None = None,
    ) -> None:
        if first_retry_interval < timedelta(seconds=0):
            raise ValueError("first_retry_interval must be >= 0")
        if max_number_of_attempts < 1:
            raise ValueError("max_number_of_attempts must be >= 1")
        if backoff_coefficient is not None and backoff_coefficient < 1:
            raise ValueError("backoff_coefficient must be >= 1")
        if max_retry_interval is not None and max_retry_interval < timedelta(seconds=0):
            raise ValueError("max_retry_interval must be >= 0")
        if retry_timeout is not None and retry_timeout < timedelta(seconds=0):
            raise ValueError("retry_timeout must be >= 0")
        object.__setattr__(self, "first_retry_interval", first_retry_interval)
        object.__setattr__(self, "max_number_of_attempts", max_number_of_attempts)
        object.__setattr__(self, "backoff_coefficient", backoff_coefficient)
        object.__setattr__(self, "max_retry_interval", max_retry_interval)
        object.__setattr__(self, "retry_timeout", retry_timeout)


def next_delay(
    policy: RetryPolicy, attempts_made: int, first_attempt_at: datetime, now: datetime
) -> timedelta | None:
    """The wait before the next attempt, or None when no attempt is left.

    `attempts_made` counts the attempts that already failed (1 after the first failure).
    """
    if attempts_made >= policy.max_number_of_attempts:
        return None
    if policy.retry_timeout is not None and now >= first_attempt_at + policy.retry_timeout:
        return None
    coefficient = policy.backoff_coefficient if policy.backoff_coefficient is not None else 1.0
    seconds = policy.first_retry_interval.total_seconds() * coefficient ** (attempts_made - 1)
    if policy.max_retry_interval is not None:
        seconds = min(seconds, policy.max_retry_interval.total_seconds())
    return timedelta(seconds=seconds)
