"""When a failed attempt is retried: Airflow 3's ``TaskInstance.next_retry_datetime``.

Without backoff the delay is ``retry_delay``. With ``retry_exponential_backoff`` (a
multiplier; Airflow's ``True`` is 2) the delay for try ``n`` is
``ceil(retry_delay * multiplier ** (n - 1))`` (at least one second) plus a jitter in
``[0, that)`` taken from a SHA-1 of ``dag_id#task_id#logical_date#try_number``, so it is
deterministic per task instance and try (map indexes share it, as in Airflow); then
capped at one day and at ``max_retry_delay``. The retry is due that long after the
failed attempt ended (its ``end_date`` from the run log, so re-deciding after a crash
gives the same time).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from ledgerflow.common.dagmodel import SerializedTask

MAX_RETRY_DELAY_SECONDS = 24 * 60 * 60
"""Airflow's ``MAX_RETRY_DELAY``: the backoff never exceeds a day."""


def retry_delay(
    task: SerializedTask, *, dag_id: str, logical_date: datetime | None, try_number: int
) -> timedelta:
    """The delay before the attempt after ``try_number`` (which just failed)."""
    delay = timedelta(seconds=task.retry_delay_seconds)
    multiplier = task.retry_exponential_backoff or 1.0
    if multiplier == 1.0 or multiplier <= 0:
        return delay
    try:
        min_backoff = math.ceil(task.retry_delay_seconds * multiplier ** (try_number - 1))
    except OverflowError:
        min_backoff = MAX_RETRY_DELAY_SECONDS
    min_backoff = max(min_backoff, 1)
    logical = logical_date.isoformat() if logical_date is not None else "None"
    digest = hashlib.sha1(
        f"{dag_id}#{task.task_id}#{logical}#{try_number}".encode(), usedforsecurity=False
    ).hexdigest()
    with_jitter = min_backoff + int(digest, 16) % min_backoff
    delay = timedelta(seconds=min(with_jitter, MAX_RETRY_DELAY_SECONDS))
    if task.max_retry_delay_seconds:
        delay = min(delay, timedelta(seconds=task.max_retry_delay_seconds))
    return delay
