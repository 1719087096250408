"""Metrics into MLflow's own SQL store with one bulk INSERT per request.

With the embedded store MLflow defaults to (``sqlite:///mlflow.db``) every write runs
inside the training process. ``SqlAlchemyStore.log_batch`` builds and flushes one ORM
object per metric, which costs about 0.1 ms of CPU per value: per-step logging of a
small Keras model spends more time there than in its optimizer steps, and holds the
GIL while doing so.

`bulk_metric_writer` writes the same rows into MLflow's own tables (named and laid out
as ``SqlMetric`` declares them) with one multi-row ``INSERT ... ON CONFLICT DO NOTHING``
that skips rows already present, so a retried request never duplicates a value, and keeps
``latest_metrics`` as MLflow does (the highest ``(step, timestamp, value)`` wins). The run
is checked to be active first, with the store's own check, so the errors are the store's
own.

The INSERT is one statement with all its rows' values, handed to the database driver as
is: SQLAlchemy's per-row parameter processing cost more CPU than the database's own work,
and a driver's ``executemany`` gives Python's lock back and takes it again for every row,
on a thread that runs next to the user's training loop.

It is a fast path, never a requirement: a store of another kind, a database without
``ON CONFLICT DO NOTHING``, or tables laid out differently from what this module knows
yield no writer, and an unexpected failure (anything but a database error) switches
the writer off for good and hands the request to ``log_batch``.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final

from autolog.batching.chunks import MetricRow

__all__ = ["BulkMetricWriter", "bulk_metric_writer"]

_log = logging.getLogger(__name__)

_DIALECTS: Final = ("sqlite", "postgresql")
# The columns of `metrics`, all of which form MLflow's primary key: a row equal on all of
# them is the same value, and MLflow itself drops such duplicates. ON CONFLICT on this
# key is that rule.
_COLUMNS: Final = ("key", "value", "timestamp", "run_uuid", "step", "is_nan")
# Bound parameters per statement stay well under SQLite's 32,766 (6 per row); SQLite
# before 3.32 allowed only 999.
_ROWS_PER_STATEMENT: Final = 1000
_ROWS_PER_STATEMENT_OLD_SQLITE: Final = 999 // len(_COLUMNS)
_PLACEHOLDERS: Final = {"qmark": "?", "format": "%s", "pyformat": "%s"}


class BulkMetricWriter:
    """Writes metric rows for one `SqlAlchemyStore`; see the module docstring."""

    def __init__(self, store: Any, insert_prefix: str, row_marks: str, rows_per_statement: int):
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric

        self._store = store
        self._latest = SqlLatestMetric
        self._prefix = insert_prefix
        self._row_marks = row_marks
        self._rows_per_statement = rows_per_statement
        self.broken = False

    def __call__(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Write ``rows`` (already validated) to run ``run_id`` in one transaction."""
        import sqlalchemy.exc
        from mlflow.exceptions import MlflowException

        store = self._store
        sanitize = store.sanitize_metric_value
        # (key, value, timestamp, run_uuid, step, is_nan): the order of _COLUMNS.
        records: dict[tuple[str, float, int, str, int, bool], None] = {}
        for key, value, timestamp, step in rows:
            is_nan, stored = sanitize(value)
            records[(key, stored, timestamp, run_id, step, is_nan)] = None
        unique = list(records)
        unknown: BaseException | None = None
        # The session maker turns database errors into the MlflowExceptions log_batch
        # raises (a locked SQLite file is TEMPORARILY_UNAVAILABLE, and retried); only what
        # is not a database error is kept out of it, to step aside below.
        with store.ManagedSessionMaker(read_only=False) as session:
            store._check_run_is_active(store._get_run(run_uuid=run_id, session=session))
            try:
                connection = session.connection()
                for start in range(0, len(unique), self._rows_per_statement):
                    part = unique[start : start + self._rows_per_statement]
                    statement = self._prefix + ",".join([self._row_marks] * len(part))
                    connection.exec_driver_sql(
                        statement + " ON CONFLICT DO NOTHING",
                        tuple(field for record in part for field in record),
                    )
                self._update_latest(session, run_id, unique)
            except (MlflowException, sqlalchemy.exc.OperationalError):
                raise
            except Exception as exc:
                session.rollback()
                unknown = exc
        if unknown is not None:
            raise _StepAside from unknown

    def _update_latest(
        self, session: Any, run_id: str, records: list[tuple[str, float, int, str, int, bool]]
    ) -> None:
        newest: dict[str, dict[str, Any]] = {}
        for key, value, timestamp, _, step, is_nan in records:
            best = newest.get(key)
            if best is None or (step, timestamp, value) > _order(best):
                newest[key] = {
                    "run_uuid": run_id,
                    "key": key,
                    "value": value,
                    "timestamp": timestamp,
                    "step": step,
                    "is_nan": is_nan,
                }
        latest = self._latest
        known = {
            m.key: m
            for m in session.query(latest)
            .filter(latest.run_uuid == run_id, latest.key.in_(sorted(newest)))
            .order_by(latest.run_uuid, latest.key)
            .with_for_update()
            .all()
        }
        for key, row in newest.items():
            old = known.get(key)
            if old is None:
                session.add(latest(**row))
            elif _order(row) > (old.step, old.timestamp, old.value):
                old.step, old.timestamp = row["step"], row["timestamp"]
                old.value, old.is_nan = row["value"], row["is_nan"]


def _order(row: dict[str, Any]) -> tuple[int, int, float]:
    return (row["step"], row["timestamp"], row["value"])


class _StepAside(Exception):
    """The fast path met something it does not know; ``log_batch`` takes the request."""


# Weak: a client the caller let go (one per BatchLogger, say) takes its writer with it.
_writers: weakref.WeakKeyDictionary[Any, BulkMetricWriter | None] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def bulk_metric_writer(client: Any) -> Callable[[str, Sequence[MetricRow]], None] | None:
    """A bulk metric writer for ``client``'s store, or ``None`` when it has no fast path.

    The returned callable falls back to ``client.log_batch`` by itself when the fast path
    steps aside, so callers treat it like ``log_batch`` for metrics.
    """
    from mlflow import MlflowClient

    if type(client) is not MlflowClient:  # a wrapper has its reasons to see each call
        return None
    with _writers_lock:
        if client in _writers:
            writer = _writers[client]
        else:
            writer = _writers[client] = _make_writer(client)
    if writer is None or writer.broken:
        return None

    def write(run_id: str, rows: Sequence[MetricRow]) -> None:
        try:
            writer(run_id, rows)
        except _StepAside as exc:
            writer.broken = True
            _log.debug("bulk metric writes off, using log_batch: %r", exc.__cause__)
            from mlflow.entities import Metric

            client.log_batch(run_id, metrics=[Metric(k, v, ts, s) for k, v, ts, s in rows])

    return write


def _make_writer(client: Any) -> BulkMetricWriter | None:
    try:
        store = client._tracking_client.store
        # Loaded already if the store is one: importing it (SQLAlchemy, alembic) for an
        # HTTP store would cost the first run a second of CPU for nothing.
        module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
        if module is None or type(store) is not module.SqlAlchemyStore:
            return None  # a subclass may store differently
        from mlflow.store.tracking.dbmodels.models import SqlMetric

        dialect = store.engine.dialect.name
        if dialect not in _DIALECTS:
            return None
        table = SqlMetric.__table__
        key = {column.name for column in table.primary_key.columns}
        # Another column (a later MLflow's) may want a value or a default we do not know.
        if key != set(_COLUMNS) or set(table.columns.keys()) != set(_COLUMNS):
            return None
        engine_dialect = store.engine.dialect
        mark = _PLACEHOLDERS.get(engine_dialect.paramstyle)
        if mark is None:
            return None
        quote = engine_dialect.identifier_preparer
        prefix = (
            f"INSERT INTO {quote.format_table(table)} "
            f"({', '.join(quote.quote(name) for name in _COLUMNS)}) VALUES "
        )
        rows_per_statement = _ROWS_PER_STATEMENT
        if dialect == "sqlite":
            import sqlite3

            if sqlite3.sqlite_version_info < (3, 32, 0):
                rows_per_statement = _ROWS_PER_STATEMENT_OLD_SQLITE
        row_marks = "(" + ",".join([mark] * len(_COLUMNS)) + ")"
        return BulkMetricWriter(store, prefix, row_marks, rows_per_statement)
    except Exception as exc:  # an MLflow laid out differently: no fast path
        _log.debug("no bulk metric writer: %r", exc)
        return None


def reset_after_fork() -> None:
    global _writers_lock
    _writers_lock = threading.Lock()
    _writers.clear()
