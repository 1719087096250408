"""The bulk metric writer for MLflow's own SQL store (SQLite here; PostgreSQL in
``tests/reliability/test_batching_postgres.py``): same rows as ``log_batch``, the store's
own errors, and ``log_batch`` taking over when the fast path meets the unknown."""

from __future__ import annotations

import gc
import weakref

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from autolog.batching import sql_bulk, transport
from tests.core.batching.helpers import (
    AWKWARD_ROWS,
    CountingClient,
    bulk_writes_equal_log_batch,
    stored_metrics,
)


def test_bulk_writes_equal_log_batch_on_sqlite(client: MlflowClient) -> None:
    bulk_writes_equal_log_batch(client, "0")


def test_a_request_larger_than_one_statement_is_written_whole(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from mlflow.entities import Metric

    # An SQLite before 3.32 takes 999 bound values per statement: 166 rows, not 1000.
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    client = MlflowClient(tracking_uri)
    writer = sql_bulk.bulk_metric_writer(client)
    assert writer is not None
    rows = [(f"m{i % 3}", float(i), 1_000 + i, i) for i in range(1000)]
    ours = client.create_run("0").info.run_id
    writer(ours, rows)
    writer(ours, rows[500:])  # retried in part: still nothing twice
    theirs = client.create_run("0").info.run_id
    client.log_batch(theirs, metrics=[Metric(*row) for row in rows])
    assert stored_metrics(client, ours) == stored_metrics(client, theirs)


def test_a_deleted_run_gets_the_stores_own_error(client: MlflowClient) -> None:
    writer = sql_bulk.bulk_metric_writer(client)
    assert writer is not None
    run_id = client.create_run("0").info.run_id
    client.delete_run(run_id)
    with pytest.raises(MlflowException) as raised:
        writer(run_id, AWKWARD_ROWS)
    # The flusher spools a run's data on this outcome instead of splitting the request.
    assert transport.classify(raised.value) == "run"


def test_log_batch_takes_over_when_the_fast_path_breaks(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unexpected(*args: object) -> None:
        raise AttributeError("an MLflow laid out differently")

    writer = sql_bulk.bulk_metric_writer(client)
    assert writer is not None
    monkeypatch.setattr(sql_bulk.BulkMetricWriter, "_update_latest", unexpected)
    broken, reference = (client.create_run("0").info.run_id for _ in range(2))
    writer(broken, AWKWARD_ROWS)  # delivered anyway, through log_batch
    assert sql_bulk.bulk_metric_writer(client) is None  # and off from now on
    monkeypatch.undo()
    from mlflow.entities import Metric

    client.log_batch(reference, metrics=[Metric(*row) for row in AWKWARD_ROWS])
    assert stored_metrics(client, broken) == stored_metrics(client, reference)


def test_no_fast_path_for_wrapped_clients_or_servers(client: MlflowClient) -> None:
    assert sql_bulk.bulk_metric_writer(CountingClient(client)) is None
    assert sql_bulk.bulk_metric_writer(MlflowClient("http://127.0.0.1:9")) is None


def test_a_client_let_go_is_not_kept_alive_by_its_writer(tracking_uri: str) -> None:
    # One client per BatchLogger is a normal way to log to several stores.
    client = MlflowClient(tracking_uri)
    write = sql_bulk.bulk_metric_writer(client)
    assert write is not None
    run_id = client.create_run("0").info.run_id
    write(run_id, AWKWARD_ROWS)
    assert stored_metrics(client, run_id)
    let_go = weakref.ref(client)
    del client, write
    gc.collect()
    assert let_go() is None
