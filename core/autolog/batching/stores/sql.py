"""The SQL fast path: writes into MLflow's own SQL store without its ORM (`SqlWriter`).

With the embedded store MLflow defaults to (``sqlite:///mlflow.db``) every write runs
inside the training process. ``SqlAlchemyStore.log_batch`` builds and flushes one ORM
object per metric, which costs about 0.1 ms of CPU per value: per-step logging of a
small Keras model spends more time there than in its optimizer steps, and holds the
GIL while doing so.

`BulkMetricWriter` writes the same rows into MLflow's own tables (named and laid out
as ``SqlMetric``, ``SqlLatestMetric`` and ``SqlParam`` declare them) in one transaction:

* one multi-row ``INSERT ... ON CONFLICT DO NOTHING`` into ``metrics``, which skips rows
  already present, so a retried request never duplicates a value;
* one multi-row upsert into ``latest_metrics`` that keeps, per key, the row with the
  highest ``(step, timestamp, value)``, the rule of MLflow's own update. Its keys go in
  sorted order, so two writers to one run lock its rows in the same order;
* one multi-row ``INSERT ... ON CONFLICT DO NOTHING`` into ``params``. A param the run
  holds already is fine with the same value (MLflow accepts that re-log); with another
  value the whole transaction is rolled back and ``log_batch`` takes the request, so the
  refusal is MLflow's own. Tags are left to ``log_batch``: some of them mean more to
  MLflow than a row (``mlflow.runName`` renames the run).

The run is checked to be active first with a one-column query; a run that is missing or
not active is handed to the store's own check, so the errors are the store's own.
`end_run` marks a run terminated with one ``UPDATE`` where MLflow's ``update_run_info``
loads the whole run (its params, tags and latest metrics) to change two columns, and
leaves anything but an active run to ``update_run_info``. `create_run` inserts the run's
row and its tags, the rows ``SqlAlchemyStore.create_run`` writes (the same name rule and
artifact location), in one transaction and a tenth of its CPU, which otherwise competes
with the caller building its model; an experiment that is missing or not active, or a run
name that contradicts the ``mlflow.runName`` tag, is left to the store's own errors.

Statements are built once, with all of a request's values, and handed to the database
driver as they are: SQLAlchemy's per-row parameter processing cost more CPU than the
database's own work, and a driver's ``executemany`` gives Python's lock back and takes it
again for every row, on a thread that runs next to the user's training loop.

It is a fast path, never a requirement. `SqlWriter` is the `StoreWriter` of such a store
(chosen by `autolog.batching.stores.writer_for` only inside the MLflow versions CI tests):
a store of another kind, a database without upserts, or tables laid out differently from
what this module knows yield no `SqlWriter`, and an unexpected failure (anything but a
database error) switches the fast path off for good and hands the request to the reference
writer's ``log_batch`` (or ``update_run_info``). With an active logged model, metrics go
through ``log_batch`` too: it links each of them to the model, which these rows cannot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import logging
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from autolog.batching.chunks import MAX_METRICS, MetricRow
from autolog.batching.stores.client import ClientWriter, active_model_id

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from autolog.batching.chunks import Chunk

__all__ = ["RUN_NAME_TAG", "BulkMetricWriter", "ParamConflict", "SqlWriter", "sql_writer"]

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
# Metric rows one transaction may take when requests queued together are merged: ten
# requests' worth, a few tens of milliseconds of the store's lock.
METRICS_PER_TRANSACTION: Final = 10_000
# The columns of `latest_metrics`, in the order the upsert lists them.
_LATEST: Final = ("key", "value", "timestamp", "step", "is_nan", "run_uuid")
_SQLITE_UPSERT: Final = (3, 24, 0)  # INSERT ... ON CONFLICT (...) DO UPDATE
_PARAMS: Final = ("key", "value", "run_uuid")
# The columns of `runs` (all of which a new run's row sets, as MLflow's does) and `tags`.
_RUN: Final = (
    "run_uuid",
    "name",
    "source_type",
    "source_name",
    "entry_point_name",
    "user_id",
    "status",
    "start_time",
    "end_time",
    "deleted_time",
    "source_version",
    "lifecycle_stage",
    "artifact_uri",
    "experiment_id",
)
_TAGS: Final = ("key", "value", "run_uuid")
RUN_NAME_TAG: Final = "mlflow.runName"


class BulkMetricWriter:
    """Writes metrics, params and run ends for one `SqlAlchemyStore` (see the module doc)."""

    def __init__(
        self,
        store: Any,
        statements: _Statements,
        rows_per_statement: int,
        session_args: Mapping[str, Any] | None = None,
    ):
        self.store = store
        self._sql = statements
        # MLflow 3.x from some minor on sends sessions to a read replica unless told
        # ``read_only=False``; before, its session maker took no argument.
        self._session_args = dict(session_args or {})
        self._rows_per_statement = rows_per_statement
        self.broken = False

    def __call__(
        self, run_id: str, rows: Sequence[MetricRow], params: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Write ``rows`` and ``params`` (validated) to run ``run_id`` in one transaction.

        Raises `ParamConflict` (and writes nothing) when the run holds one of ``params``
        with another value: MLflow refuses that, and its own ``log_batch`` says how.
        """
        store = self.store
        sanitize = store.sanitize_metric_value
        # (key, value, timestamp, run_uuid, step, is_nan): the order of _COLUMNS.
        records: dict[tuple[str, float, int, str, int, bool], None] = {}
        for key, value, timestamp, step in rows:
            if value - value == 0.0:  # finite: the store keeps it as it is
                records[(key, value, timestamp, run_id, step, False)] = None
            else:
                is_nan, stored = sanitize(value)
                records[(key, stored, timestamp, run_id, step, is_nan)] = None
        unique = list(records)
        with self._transaction() as (session, connection):
            self._check_active(session, connection, run_id)
            self._insert_rows(connection, self._sql.insert_metrics, self._sql.metric_marks, unique)
            self._update_latest(connection, run_id, unique)
            if params:
                self._insert_params(connection, run_id, params)

    def create_run(
        self,
        experiment_id: str,
        *,
        user_id: str,
        start_time: int,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> str | None:
        """Create a run as ``SqlAlchemyStore.create_run`` does; ``None`` (nothing done)
        for what only the store should answer."""
        sql = self._sql
        if sql.insert_run is None or not experiment_id.isdigit():
            return None
        name_tag = tags.get(RUN_NAME_TAG)
        if run_name and name_tag and run_name != name_tag:
            return None  # the store refuses that, in its own words
        experiment = int(experiment_id)
        with self._transaction() as (_, connection):
            # Inside the transaction: should a later MLflow move these, the fast path steps
            # aside and the store creates the run.
            from mlflow.entities import LifecycleStage, RunStatus, SourceType
            from mlflow.utils.name_utils import _generate_random_name
            from mlflow.utils.uri import append_to_uri_path

            found = connection.exec_driver_sql(sql.select_experiment, (experiment,)).fetchall()
            if len(found) != 1 or found[0][1] != LifecycleStage.ACTIVE:
                return None
            run_id = uuid.uuid4().hex
            name = run_name or name_tag or _generate_random_name()  # type: ignore[no-untyped-call]
            all_tags = dict(tags) if name_tag else {**tags, RUN_NAME_TAG: name}
            connection.exec_driver_sql(
                sql.insert_run,
                (
                    run_id,
                    name,
                    SourceType.to_string(SourceType.UNKNOWN),
                    "",
                    "",
                    user_id,
                    RunStatus.to_string(RunStatus.RUNNING),
                    start_time,
                    None,
                    None,
                    "",
                    LifecycleStage.ACTIVE,
                    append_to_uri_path(found[0][0], run_id, "artifacts"),  # type: ignore[no-untyped-call]
                    experiment,
                ),
            )
            rows = [(key, value, run_id) for key, value in all_tags.items()]
            self._insert_rows(connection, sql.insert_tags, sql.tag_marks, rows)
        return run_id

    def _insert_rows(
        self, connection: Any, statement: str, marks: str, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Run ``statement`` (an ``INSERT`` with ``{rows}``) over ``rows``, in as few
        statements as the database's limit on bound values allows."""
        for start in range(0, len(rows), self._rows_per_statement):
            part = rows[start : start + self._rows_per_statement]
            connection.exec_driver_sql(
                statement.format(rows=",".join([marks] * len(part))),
                tuple(itertools.chain.from_iterable(part)),
            )

    def end_run(self, run_id: str, status: str, end_time: int) -> bool:
        """Mark an active run terminated; ``False`` (nothing done) for any other run."""
        with self._transaction() as (_, connection):
            result = connection.exec_driver_sql(self._sql.end_run, (status, end_time, run_id))
            return bool(result.rowcount == 1)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[tuple[Any, Any]]:
        """The store's own session (its error handling, its commit), and its connection.

        The session maker turns database errors into the MlflowExceptions the store's own
        methods raise (a locked SQLite file is TEMPORARILY_UNAVAILABLE, and retried); only
        what is not a database error is kept out of it, to step aside.
        """
        import sqlalchemy.exc
        from mlflow.exceptions import MlflowException

        unknown: BaseException | None = None
        conflict: ParamConflict | None = None
        try:
            sessions = self.store.ManagedSessionMaker(**self._session_args)
        except Exception as exc:  # a session maker laid out otherwise
            raise _StepAside from exc
        with sessions as session:
            try:
                yield session, session.connection()
            except (MlflowException, sqlalchemy.exc.OperationalError):
                raise
            except ParamConflict as exc:  # not for the session maker to turn into an error
                session.rollback()
                conflict = exc
            except Exception as exc:
                session.rollback()
                unknown = exc
        if conflict is not None:
            raise conflict
        if unknown is not None:
            raise _StepAside from unknown

    def _check_active(self, session: Any, connection: Any, run_id: str) -> None:
        found = connection.exec_driver_sql(self._sql.lifecycle_stage, (run_id,)).fetchall()
        if found != [("active",)]:
            # Missing, deleted, or something this module does not know: the store says.
            store = self.store
            store._check_run_is_active(store._get_run(run_uuid=run_id, session=session))

    def _insert_params(
        self, connection: Any, run_id: str, params: Sequence[tuple[str, str]]
    ) -> None:
        # Already there with the same value is what MLflow accepts as a re-log; with
        # another value the transaction is rolled back and ``log_batch`` reports it.
        sql = self._sql
        for start in range(0, len(params), self._rows_per_statement):
            part = params[start : start + self._rows_per_statement]
            inserted = connection.exec_driver_sql(
                sql.insert_params.format(rows=",".join([sql.param_marks] * len(part))),
                tuple(field for key, value in part for field in (key, value, run_id)),
            ).rowcount
            if inserted == len(part):
                continue
            wanted = dict(part)
            stored = connection.exec_driver_sql(
                sql.select_params.format(keys=",".join([sql.mark] * len(wanted))),
                (run_id, *wanted),
            ).fetchall()
            if any(wanted[key] != value for key, value in stored):
                raise ParamConflict(run_id)

    def _update_latest(
        self, connection: Any, run_id: str, records: list[tuple[str, float, int, str, int, bool]]
    ) -> None:
        # Per key, the highest (step, timestamp, value) of this request, and its is_nan.
        newest: dict[str, tuple[int, int, float, bool]] = {}
        for key, value, timestamp, _, step, is_nan in records:
            best = newest.get(key)
            if best is None or (step, timestamp, value) > best[:3]:
                newest[key] = (step, timestamp, value, is_nan)
        keys = sorted(newest)
        for start in range(0, len(keys), self._rows_per_statement):
            part = keys[start : start + self._rows_per_statement]
            values: list[Any] = []
            for key in part:
                step, timestamp, value, is_nan = newest[key]
                values += (key, value, timestamp, step, is_nan, run_id)
            connection.exec_driver_sql(
                self._sql.upsert_latest.format(rows=",".join([self._sql.latest_marks] * len(part))),
                tuple(values),
            )


class ParamConflict(Exception):
    """The run holds one of the params with another value; nothing was written."""


@dataclasses.dataclass(frozen=True)
class _Statements:
    """The SQL of one store's dialect; ``{rows}`` (``{keys}``) stands for placeholders."""

    mark: str
    insert_metrics: str
    metric_marks: str
    upsert_latest: str
    latest_marks: str
    insert_params: str
    param_marks: str
    select_params: str
    lifecycle_stage: str
    end_run: str
    # None when `runs`, `tags` or `experiments` are laid out otherwise: runs are then
    # created by the store alone.
    select_experiment: str | None
    insert_run: str | None
    insert_tags: str
    tag_marks: str


class _StepAside(Exception):
    """The fast path met something it does not know; ``log_batch`` takes the request."""


class SqlWriter(ClientWriter):
    """`StoreWriter` for MLflow's own SQL store: bulk rows, a one-``UPDATE`` end, a one-
    transaction creation; the reference writer for everything else (see the module doc)."""

    kind = "sql"

    def __init__(self, client: MlflowClient, bulk: BulkMetricWriter) -> None:
        super().__init__(client)
        self.bulk = bulk

    @property
    def metrics_per_write(self) -> int:
        # One transaction per write, and its commit (a file sync on SQLite) is what a
        # request of a thousand values costs most: write the ones queued together at once.
        return MAX_METRICS if self.bulk.broken else METRICS_PER_TRANSACTION

    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> str:
        if start_time is not None and not self.bulk.broken:
            try:
                created = self.bulk.create_run(
                    experiment_id,
                    # What MlflowClient makes it: the ``mlflow.user`` tag, else "unknown".
                    user_id=tags.get("mlflow.user", "unknown"),
                    start_time=start_time,
                    tags=tags,
                    run_name=run_name,
                )
            except _StepAside as exc:
                self._switch_off(exc)
                created = None
            if created is not None:
                return created
        return super().create_run(
            experiment_id, start_time=start_time, tags=tags, run_name=run_name
        )

    def write_chunk(self, run_id: str, chunk: Chunk) -> None:
        # MLflow's log_batch links each metric to the active logged model; the bulk rows
        # cannot, so with one set the store's own log_batch writes them.
        linked = bool(chunk.metrics) and bool(active_model_id())
        if self.bulk.broken or linked or not (chunk.metrics or chunk.params):
            super().write_chunk(run_id, chunk)
            return
        self.write_rows(run_id, chunk.metrics, chunk.params)
        # Tags go in a second transaction (MLflow gives some of them meaning): if it
        # fails, the retry writes the metrics and params again, and the bulk writer
        # skips what is already there.
        if chunk.tags:
            self.log_batch(run_id, tags=chunk.tags)

    def write_rows(
        self, run_id: str, rows: Sequence[MetricRow], params: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Metrics and params in bulk; ``log_batch`` takes over when the fast path steps
        aside, and takes the params when one conflicts with the run's (its error is the
        store's own)."""
        if self.bulk.broken:
            self.log_batch(run_id, rows, params)
            return
        try:
            self.bulk(run_id, rows, params)
            return
        except ParamConflict:
            if rows:
                self.write_rows(run_id, rows)  # on their own; the params go through log_batch
        except _StepAside as exc:
            self._switch_off(exc)
            if rows:
                self.log_batch(run_id, rows)
        if params:
            self.log_batch(run_id, params=params)

    def end_run(self, run_id: str, status: str, end_time: int) -> None:
        if not self.bulk.broken:
            try:
                if self.bulk.end_run(run_id, status, end_time):
                    return
            except _StepAside as exc:
                self._switch_off(exc)
        # Not an active run (the store's update raises its own error), or no fast path:
        # the store's update alone. ``set_terminated`` would also stop the store's
        # async-logging queue, which the user's own MLflow calls share.
        from mlflow.entities import RunStatus

        self.bulk.store.update_run_info(
            run_id, run_status=RunStatus.from_string(status), end_time=end_time, run_name=None
        )

    def _switch_off(self, exc: _StepAside) -> None:
        self.bulk.broken = True
        _log.debug("SQL fast path off, using the store's own methods: %r", exc.__cause__)


def sql_writer(client: MlflowClient) -> SqlWriter | None:
    """The SQL fast path for ``client``'s store, or ``None`` when it has none."""
    bulk = _make_writer(client)
    return SqlWriter(client, bulk) if bulk is not None else None


def _make_writer(client: Any) -> BulkMetricWriter | None:
    try:
        store = client._tracking_client.store
        # Loaded already if the store is one: importing it (SQLAlchemy, alembic) for an
        # HTTP store would cost the first run a second of CPU for nothing.
        module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
        if module is None or type(store) is not module.SqlAlchemyStore:
            return None  # a subclass may store differently
        dialect = store.engine.dialect
        if dialect.name not in _DIALECTS:
            return None
        rows_per_statement = _ROWS_PER_STATEMENT
        if dialect.name == "sqlite":
            import sqlite3

            if sqlite3.sqlite_version_info < _SQLITE_UPSERT:
                return None
            if sqlite3.sqlite_version_info < (3, 32, 0):
                rows_per_statement = _ROWS_PER_STATEMENT_OLD_SQLITE
        mark = _PLACEHOLDERS.get(dialect.paramstyle)
        if mark is None:
            return None
        statements = _statements(dialect.identifier_preparer, mark)
        if statements is None:
            return None
        takes = inspect.signature(store.ManagedSessionMaker).parameters
        session_args = {"read_only": False} if "read_only" in takes else {}
        return BulkMetricWriter(store, statements, rows_per_statement, session_args)
    except Exception as exc:  # an MLflow laid out differently: no fast path
        _log.debug("no bulk metric writer: %r", exc)
        return None


def _statements(quote: Any, mark: str) -> _Statements | None:
    """The statements for MLflow's tables, or ``None`` if they are not laid out as known."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlExperiment,
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )

    metrics, latest, runs = SqlMetric.__table__, SqlLatestMetric.__table__, SqlRun.__table__
    params, tags, experiments = SqlParam.__table__, SqlTag.__table__, SqlExperiment.__table__

    def key_of(table: Any) -> set[str]:
        return {column.name for column in table.primary_key.columns}

    # Another column (a later MLflow's) may want a value or a default we do not know.
    if key_of(metrics) != set(_COLUMNS) or set(metrics.columns.keys()) != set(_COLUMNS):
        return None
    if key_of(latest) != {"key", "run_uuid"} or set(latest.columns.keys()) != set(_LATEST):
        return None
    if key_of(params) != {"key", "run_uuid"} or set(params.columns.keys()) != set(_PARAMS):
        return None
    if not {"run_uuid", "status", "end_time", "lifecycle_stage"} <= set(runs.columns.keys()):
        return None
    creates = (
        set(runs.columns.keys()) == set(_RUN)
        and set(tags.columns.keys()) == set(_TAGS)
        and {"experiment_id", "artifact_location", "lifecycle_stage"}
        <= set(experiments.columns.keys())
    )
    names = {*_COLUMNS, *_LATEST, *runs.columns.keys(), "artifact_location"}
    q = {name: quote.quote(name) for name in names}
    latest_table = quote.format_table(latest)
    runs_table = quote.format_table(runs)
    params_table = quote.format_table(params)
    tags_table = quote.format_table(tags)
    better = (
        f"(excluded.{q['step']}, excluded.{q['timestamp']}, excluded.{q['value']}) > "
        f"({latest_table}.{q['step']}, {latest_table}.{q['timestamp']}, "
        f"{latest_table}.{q['value']})"
    )
    return _Statements(
        mark=mark,
        insert_metrics=(
            f"INSERT INTO {quote.format_table(metrics)} "
            f"({', '.join(q[name] for name in _COLUMNS)}) VALUES {{rows}} ON CONFLICT DO NOTHING"
        ),
        metric_marks="(" + ",".join([mark] * len(_COLUMNS)) + ")",
        upsert_latest=(
            f"INSERT INTO {latest_table} ({', '.join(q[name] for name in _LATEST)}) "
            f"VALUES {{rows}} ON CONFLICT ({q['key']}, {q['run_uuid']}) DO UPDATE SET "
            + ", ".join(f"{q[name]} = excluded.{q[name]}" for name in _LATEST[1:5])
            + f" WHERE {better}"
        ),
        latest_marks="(" + ",".join([mark] * len(_LATEST)) + ")",
        insert_params=(
            f"INSERT INTO {params_table} ({', '.join(q[name] for name in _PARAMS)}) "
            "VALUES {rows} ON CONFLICT DO NOTHING"
        ),
        param_marks="(" + ",".join([mark] * len(_PARAMS)) + ")",
        select_params=(
            f"SELECT {q['key']}, {q['value']} FROM {params_table} "
            f"WHERE {q['run_uuid']} = {mark} AND {q['key']} IN ({{keys}})"
        ),
        lifecycle_stage=(
            f"SELECT {q['lifecycle_stage']} FROM {runs_table} WHERE {q['run_uuid']} = {mark}"
        ),
        end_run=(
            f"UPDATE {runs_table} SET {q['status']} = {mark}, {q['end_time']} = {mark} "
            f"WHERE {q['run_uuid']} = {mark} AND {q['lifecycle_stage']} = 'active'"
        ),
        select_experiment=(
            f"SELECT {q['artifact_location']}, {q['lifecycle_stage']} "
            f"FROM {quote.format_table(experiments)} WHERE {q['experiment_id']} = {mark}"
            if creates
            else None
        ),
        insert_run=(
            f"INSERT INTO {runs_table} ({', '.join(q[name] for name in _RUN)}) "
            f"VALUES ({','.join([mark] * len(_RUN))})"
            if creates
            else None
        ),
        insert_tags=(
            f"INSERT INTO {tags_table} ({', '.join(q[name] for name in _TAGS)}) VALUES {{rows}}"
        ),
        tag_marks="(" + ",".join([mark] * len(_TAGS)) + ")",
    )
