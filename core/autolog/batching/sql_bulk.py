"""Metrics into MLflow's own SQL store with one bulk INSERT per request.

With the embedded store MLflow defaults to (``sqlite:///mlflow.db``) every write runs
inside the training process. ``SqlAlchemyStore.log_batch`` builds and flushes one ORM
object per metric, which costs about 0.1 ms of CPU per value: per-step logging of a
small Keras model spends more time there than in its optimizer steps, and holds the
GIL while doing so.

`bulk_metric_writer` writes the same rows through MLflow's own table definitions
(``SqlMetric``, ``SqlLatestMetric``) with one multi-row INSERT that skips rows already
present, so a retried request never duplicates a value, and keeps ``latest_metrics`` as
MLflow does (the highest ``(step, timestamp, value)`` wins). The run is checked to be
active first, with the store's own check, so the errors are the store's own.

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

# MLflow's primary key of `metrics`: a row equal on all of these is the same value, and
# MLflow itself drops such duplicates. ON CONFLICT on this key is that rule.
_METRIC_IDENTITY: Final = frozenset({"key", "timestamp", "step", "run_uuid", "value", "is_nan"})
_DIALECTS: Final = ("sqlite", "postgresql")
# Bound parameters per statement stay well under SQLite's 32,766 (6 per row).
_ROWS_PER_STATEMENT: Final = 1000


class BulkMetricWriter:
    """Writes metric rows for one `SqlAlchemyStore`; see the module docstring."""

    def __init__(self, store: Any, insert: Callable[[Any], Any]) -> None:
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

        self._store = store
        self._metric = SqlMetric
        self._latest = SqlLatestMetric
        self._insert = insert(SqlMetric.__table__).on_conflict_do_nothing()
        self.broken = False

    def __call__(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Write ``rows`` (already validated) to run ``run_id`` in one transaction."""
        import sqlalchemy.exc
        from mlflow.exceptions import MlflowException

        store = self._store
        records: dict[tuple[str, int, int, float, bool], None] = {}
        for key, value, timestamp, step in rows:
            is_nan, stored = store.sanitize_metric_value(value)
            records[(key, timestamp, step, stored, is_nan)] = None
        values = [
            {"run_uuid": run_id, "key": k, "timestamp": t, "step": s, "value": v, "is_nan": n}
            for k, t, s, v, n in records
        ]
        unknown: BaseException | None = None
        # The session maker turns database errors into the MlflowExceptions log_batch
        # raises (a locked SQLite file is TEMPORARILY_UNAVAILABLE, and retried); only what
        # is not a database error is kept out of it, to step aside below.
        with store.ManagedSessionMaker(read_only=False) as session:
            store._check_run_is_active(store._get_run(run_uuid=run_id, session=session))
            try:
                for start in range(0, len(values), _ROWS_PER_STATEMENT):
                    session.execute(self._insert, values[start : start + _ROWS_PER_STATEMENT])
                self._update_latest(session, run_id, values)
            except (MlflowException, sqlalchemy.exc.OperationalError):
                raise
            except Exception as exc:
                session.rollback()
                unknown = exc
        if unknown is not None:
            raise _StepAside from unknown

    def _update_latest(self, session: Any, run_id: str, values: list[dict[str, Any]]) -> None:
        newest: dict[str, dict[str, Any]] = {}
        for row in values:
            best = newest.get(row["key"])
            if best is None or _order(row) > _order(best):
                newest[row["key"]] = row
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
        key = {column.name for column in SqlMetric.__table__.primary_key.columns}
        if key != _METRIC_IDENTITY:
            return None
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        return BulkMetricWriter(store, insert)
    except Exception as exc:  # an MLflow laid out differently: no fast path
        _log.debug("no bulk metric writer: %r", exc)
        return None


def reset_after_fork() -> None:
    global _writers_lock
    _writers_lock = threading.Lock()
    _writers.clear()
