"""No record may fail a micro-batch twice: find the records a sink write refuses, so they can be
dead-lettered while the rest of the batch is stored.

A write that fails on *data* (PostgreSQL data, integrity or program-limit errors, values Python
cannot encode) fails the same way on every replay of the batch, so retrying it would stop the
stream for good. Such a batch is bisected instead: a subset is written in a transaction that is
always rolled back (a *probe*), the failing halves are split again, and the records that fail on
their own are the culprits; k bad records among n cost about 2k log2(n) probes. An outage (the
database or broker away, a timeout) is not a data error: the whole batch fails and Spark retries
it from its checkpoint, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from kafka import KafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Python errors that come from converting a value (a row's text, number or JSON), not from code.
_VALUE_ERRORS = (UnicodeError, ValueError, TypeError, OverflowError)


def is_data_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the data written (it will recur on replay), not from an outage."""
    if isinstance(exc, psycopg.errors.ProgramLimitExceeded | psycopg.DataError |
                  psycopg.IntegrityError):
        return True  # e.g. 22P05 NUL in jsonb, 22021 bad encoding, 54000 index row too big
    if isinstance(exc, psycopg.Error):
        return False  # connection lost, timeout, lock: retry the whole batch
    return isinstance(exc, _VALUE_ERRORS)


def describe(exc: BaseException, limit: int = 500) -> str:
    """``Type: first line of the message``, at most ``limit`` characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:limit]


Probe = Callable[[Sequence[T]], BaseException | None]


def find_culprits(items: Sequence[T], probe: Probe) -> list[tuple[T, BaseException]]:
    """The items that fail ``probe`` on their own, with their error, found by bisection.

    ``probe(subset)`` returns the data error of writing ``subset`` alone, or None; any other
    exception propagates (an outage during the search fails the batch, which is then retried).
    Items whose failure needs another item (neither half fails alone) are not returned.
    """
    culprits: list[tuple[T, BaseException]] = []
    stack: list[tuple[Sequence[T], BaseException | None]] = [(items, probe(items))]
    while stack:
        subset, error = stack.pop()
        if error is None:
            continue
        if len(subset) == 1:
            culprits.append((subset[0], error))
            continue
        mid = len(subset) // 2
        for half in (subset[mid:], subset[:mid]):  # pushed last, searched first: input order
            stack.append((half, probe(half)))
    return culprits


def fetch_records(kafka: dict[str, Any], where: list[tuple[str, int, int]],
                  timeout_s: float = 10.0) -> dict[tuple[str, int, int], bytes | None]:
    """The values of the records at ``(topic, partition, offset)``, read back from Kafka for their
    dead letters (scored rows do not carry their payload). Best effort: a record that cannot be
    read in ``timeout_s`` maps to None (its dead letter still names its offset). ``kafka``: the
    client options (:func:`parrotwatch.stack.kafka_auth.client_options`)."""
    found: dict[tuple[str, int, int], bytes | None] = dict.fromkeys(where)
    if not where:
        return found
    consumer = KafkaConsumer(**kafka, enable_auto_commit=False,
                             isolation_level="read_committed", consumer_timeout_ms=1000)
    try:
        for topic, partition, offset in where:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            records = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=1).get(tp, [])
            if records and records[0].offset == offset and records[0].value is not None:
                found[(topic, partition, offset)] = records[0].value
    except Exception:  # the dead letter is kept without its head rather than not at all
        log.warning("could not read back the records of %d dead letter(s)", len(where),
                    exc_info=True)
    finally:
        consumer.close()
    return found
