"""The SQL fast path for MLflow's own SQL store (SQLite here; PostgreSQL in
``tests/reliability/test_batching_postgres.py``): same rows as ``log_batch``, the store's
own errors, and the reference writer taking over when the fast path meets the unknown."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from autolog.batching import stores, transport
from autolog.batching.stores import sql
from autolog.batching.stores.client import ClientWriter
from tests.core.batching.helpers import (
    AWKWARD_ROWS,
    CountingClient,
    bulk_writes_equal_log_batch,
    sql_writer,
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
    writer = sql_writer(client)
    rows = [(f"m{i % 3}", float(i), 1_000 + i, i) for i in range(1000)]
    ours = client.create_run("0").info.run_id
    writer.write_rows(ours, rows)
    writer.write_rows(ours, rows[500:])  # retried in part: still nothing twice
    theirs = client.create_run("0").info.run_id
    client.log_batch(theirs, metrics=[Metric(*row) for row in rows])
    assert stored_metrics(client, ours) == stored_metrics(client, theirs)


def test_a_deleted_run_gets_the_stores_own_error(client: MlflowClient) -> None:
    writer = sql_writer(client)
    run_id = client.create_run("0").info.run_id
    client.delete_run(run_id)
    with pytest.raises(MlflowException) as raised:
        writer.write_rows(run_id, AWKWARD_ROWS)
    # The flusher spools a run's data on this outcome instead of splitting the request.
    assert transport.classify(raised.value) == "run"


def test_log_batch_takes_over_when_the_fast_path_breaks(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unexpected(*args: object) -> None:
        raise AttributeError("an MLflow laid out differently")

    writer = sql_writer(client)
    monkeypatch.setattr(sql.BulkMetricWriter, "_update_latest", unexpected)
    broken, reference = (client.create_run("0").info.run_id for _ in range(2))
    writer.write_rows(broken, AWKWARD_ROWS)  # delivered anyway, through log_batch
    assert writer.bulk.broken and stores.writer_for(client) is writer  # and off from now on
    monkeypatch.undo()
    from mlflow.entities import Metric

    client.log_batch(reference, metrics=[Metric(*row) for row in AWKWARD_ROWS])
    assert stored_metrics(client, broken) == stored_metrics(client, reference)


def test_no_sql_fast_path_for_wrapped_clients_or_servers(client: MlflowClient) -> None:
    assert stores.writer_for(CountingClient(client)).kind == "client"  # type: ignore[arg-type]
    assert stores.writer_for(MlflowClient("http://127.0.0.1:9")).kind == "rest"


def test_a_client_let_go_is_not_kept_alive_by_its_writer(tracking_uri: str) -> None:
    # One client per BatchLogger is a normal way to log to several stores.
    client = MlflowClient(tracking_uri)
    writer = sql_writer(client)
    run_id = client.create_run("0").info.run_id
    writer.write_rows(run_id, AWKWARD_ROWS)
    assert stored_metrics(client, run_id)
    let_go = weakref.ref(client)
    del client, writer
    gc.collect()
    assert let_go() is None


def _latest_rows(client: MlflowClient, run_id: str) -> list[tuple[str, float, int, int, bool]]:
    """``latest_metrics`` as stored: key, value, timestamp, step, is_nan."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric

    store = client._tracking_client.store
    with store.ManagedSessionMaker() as session:
        rows = session.query(SqlLatestMetric).filter(SqlLatestMetric.run_uuid == run_id).all()
        return sorted((r.key, r.value, r.timestamp, r.step, bool(r.is_nan)) for r in rows)


_VALUES = st.one_of(
    st.sampled_from([0.5, 0.0, -1.0, float("nan"), float("inf"), float("-inf")]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
_ROWS = st.tuples(
    st.sampled_from(["loss", "acc"]), _VALUES, st.integers(0, 4), st.integers(0, 4)
).map(lambda r: (r[0], float(r[1]), 1_000 + r[2], r[3]))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(requests=st.lists(st.lists(_ROWS, min_size=1, max_size=6), min_size=1, max_size=4))
def test_any_sequence_of_requests_leaves_what_log_batch_leaves(
    client: MlflowClient, requests: list[list[tuple[str, float, int, int]]]
) -> None:
    """Histories and ``latest_metrics`` (value, step, timestamp, NaN flag) match MLflow's
    own ``log_batch`` after the same requests, in order: ties, steps going backwards,
    repeats of earlier rows, non-finite values."""
    from mlflow.entities import Metric

    writer = sql_writer(client)
    ours, theirs = (client.create_run("0").info.run_id for _ in range(2))
    for rows in requests:
        writer.write_rows(ours, rows)
        try:
            client.log_batch(theirs, metrics=[Metric(*row) for row in rows])
        except MlflowException as exc:
            # MLflow 3.7's own log_batch refuses a request that repeats a NaN value stored
            # by an earlier one (its duplicate check compares NaN with NaN; 3.17's does
            # not): nothing to compare with. The bulk writer stores it once, as 3.17 does.
            assume("UNIQUE constraint failed" not in str(exc))
            raise
    assert stored_metrics(client, ours) == stored_metrics(client, theirs)
    assert _latest_rows(client, ours) == _latest_rows(client, theirs)


def test_the_fast_end_of_a_run_equals_update_run_info(client: MlflowClient) -> None:
    from mlflow.entities import RunStatus

    ours, theirs = (client.create_run("0").info.run_id for _ in range(2))
    assert sql_writer(client).bulk.end_run(ours, "FAILED", 1_234_567)
    store = client._tracking_client.store
    store.update_run_info(theirs, RunStatus.FAILED, 1_234_567, None)
    fields = ("status", "end_time", "lifecycle_stage", "start_time", "run_name")
    mine, reference = client.get_run(ours).info, client.get_run(theirs).info
    assert [getattr(mine, f) for f in fields[:3]] == [getattr(reference, f) for f in fields[:3]]
    assert mine.status == "FAILED" and mine.end_time == 1_234_567


def _as_stored(client: MlflowClient, run_id: str) -> dict[str, object]:
    """Everything a user sees of a new run, but what is unique to every run."""
    run = client.get_run(run_id)
    info = run.info
    return {
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "lifecycle_stage": info.lifecycle_stage,
        "artifact_uri": info.artifact_uri.replace(run_id, "<run>"),
        "tags": run.data.tags,
        "found_by_tag": [
            r.info.run_id == run_id
            for r in client.search_runs(
                [info.experiment_id], filter_string=f"tags.key = '{run.data.tags['key']}'"
            )
        ],
    }


@pytest.mark.parametrize("run_name", [None, "named"])
def test_the_fast_creation_of_a_run_equals_create_run(
    client: MlflowClient, run_name: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = client.create_experiment(f"fast-create-{run_name}")
    tags = {"mlflow.user": "ada", "mlflow.source.name": "train.py", "key": "k1"}
    writer = sql_writer(client)
    with monkeypatch.context() as patched:  # the fast path makes it, not the reference
        patched.setattr(ClientWriter, "create_run", lambda *a, **k: pytest.fail("not fast"))
        ours = writer.create_run(experiment, start_time=1_234, tags=tags, run_name=run_name)
    theirs = client.create_run(
        experiment, start_time=1_234, tags={**tags, "key": "k2"}, run_name=run_name
    ).info.run_id
    mine, reference = _as_stored(client, ours), _as_stored(client, theirs)
    if run_name is None:  # a random name each, as MLflow makes them
        assert mine["run_name"] == mine["tags"]["mlflow.runName"]  # type: ignore[index]
        for stored in (mine, reference):
            stored["run_name"] = stored["tags"]["mlflow.runName"] = "<random>"  # type: ignore[index]
    reference["tags"]["key"] = "k1"  # type: ignore[index]
    assert mine == reference
    # The run takes what a run takes: params, metrics, its artifacts directory.
    client.log_batch(ours, metrics=[], params=[])
    writer.end_run(ours, "FINISHED", 2_000)
    assert client.get_run(ours).info.status == "FINISHED"


def test_runs_the_fast_path_cannot_create_get_the_stores_own_error(
    client: MlflowClient,
) -> None:
    deleted = client.create_experiment("deleted")
    client.delete_experiment(deleted)
    writer = sql_writer(client)
    for experiment, run_name, tags in [
        (deleted, None, {}),  # not active
        ("987654", None, {}),  # no such experiment
        ("0", "a", {"mlflow.runName": "b"}),  # two names
    ]:
        made = writer.bulk.create_run(
            experiment, user_id="u", start_time=1, tags=tags, run_name=run_name
        )
        assert made is None  # nothing done: left to the store
        with pytest.raises(MlflowException):
            writer.create_run(experiment, start_time=1, tags=tags, run_name=run_name)
    assert not writer.bulk.broken
    assert client.search_runs([deleted, "0"]) == []


def test_the_store_creates_the_run_when_the_fast_path_meets_the_unknown(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.utils.name_utils

    from autolog.batching import runs

    # A later MLflow that moved a helper the fast path imports (the store imported it long
    # ago, under its own name).
    monkeypatch.delattr(mlflow.utils.name_utils, "_generate_random_name")
    client = MlflowClient(tracking_uri)
    spec = runs.create_spec(
        run_key="k", experiment_id="0", run_name="fallback", tags={"team": "a"}, start_time=5
    )
    writer = sql_writer(client)
    run = client.get_run(runs.ensure_run(writer, spec, search_first=False))
    assert (run.info.run_name, run.info.start_time) == ("fallback", 5)
    assert run.data.tags["team"] == "a" and run.data.tags[runs.RUN_KEY_TAG] == "k"
    assert writer.bulk.broken  # switched off for this client


def test_ending_a_deleted_run_gets_the_stores_own_error(client: MlflowClient) -> None:
    run_id = client.create_run("0").info.run_id
    client.delete_run(run_id)
    writer = sql_writer(client)
    assert not writer.bulk.end_run(run_id, "FINISHED", 1)  # nothing done here
    with pytest.raises(MlflowException) as raised:
        writer.end_run(run_id, "FINISHED", 1)
    assert transport.classify(raised.value) == "run"
    assert client.get_run(run_id).info.status == "RUNNING"


def test_params_go_with_the_metrics_and_a_conflict_gets_the_stores_own_error(
    client: MlflowClient,
) -> None:
    writer = sql_writer(client)
    run_id = client.create_run("0").info.run_id
    writer.write_rows(run_id, AWKWARD_ROWS[:2], [("lr", "0.1"), ("epochs", "10")])
    writer.write_rows(run_id, [], [("lr", "0.1")])  # the same value again: accepted, as MLflow does
    assert client.get_run(run_id).data.params == {"lr": "0.1", "epochs": "10"}
    with pytest.raises(MlflowException, match="Changing param values is not allowed") as raised:
        writer.write_rows(run_id, AWKWARD_ROWS[2:4], [("lr", "0.2"), ("units", "64")])
    assert transport.classify(raised.value) == "item"  # the flusher isolates the param
    assert client.get_run(run_id).data.params == {"lr": "0.1", "epochs": "10"}
    assert len(client.get_metric_history(run_id, "loss")) == 4  # the metrics got in


def test_a_refused_param_is_isolated_on_the_fast_path(tracking_uri: str, spool_dir: object) -> None:
    from autolog.batching import BatchLogger, InvalidDataWarning

    client = MlflowClient(tracking_uri)
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", "0.1")  # logged before us: the store refuses a change
    logger = BatchLogger(run_id)
    for i in range(300):
        logger.log_metric("loss", float(i), step=i)
    logger.log_params({"lr": 0.2, "epochs": 10})
    with pytest.warns(InvalidDataWarning) as record:
        logger.close()
    assert len(client.get_metric_history(run_id, "loss")) == 300
    assert client.get_run(run_id).data.params == {"lr": "0.1", "epochs": "10"}
    refused = [w.message for w in record if isinstance(w.message, InvalidDataWarning)]
    assert [(w.kind, w.key) for w in refused] == [("param", "lr")]


def test_metrics_reach_the_active_logged_model_as_log_batch_links_them(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch, spool_dir: Path
) -> None:
    from mlflow.entities import Metric

    from autolog.batching import BatchLogger

    model = client.create_logged_model("0")
    monkeypatch.setenv("MLFLOW_ACTIVE_MODEL_ID", model.model_id)
    plain = client.create_run("0").info.run_id
    # MLflow reads the variable once per thread: a new thread, as our sender's are.
    sender = threading.Thread(
        target=client.log_batch, args=(plain,), kwargs={"metrics": [Metric("acc", 0.5, 1, 1)]}
    )
    sender.start()
    sender.join()
    ours = client.create_run("0").info.run_id
    logger = BatchLogger(ours, client=MlflowClient(client.tracking_uri))
    logger.log_metric("acc", 0.5, step=1)
    logger.log_param("lr", 0.1)
    logger.close()

    linked = client.get_logged_model(model.model_id).metrics or []
    assert sorted((m.run_id, m.key, m.value, m.step) for m in linked) == sorted(
        [(plain, "acc", 0.5, 1), (ours, "acc", 0.5, 1)]
    )
    assert client.get_run(ours).data.params == {"lr": "0.1"}


def test_values_queued_together_reach_sqlite_whole_in_few_transactions(
    tracking_uri: str, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """25,000 values released together (a run's end after a quiet `flush_interval`) go
    out as requests of up to 10,000 metrics, one transaction each, and every history is
    whole: the merged requests lose and repeat nothing."""
    from autolog.batching import BatchLogger

    writes: list[int] = []
    bulk_write = sql.BulkMetricWriter.__call__

    def counted(self: sql.BulkMetricWriter, run: str, rows: Any, params: Any = ()) -> None:
        writes.append(len(rows))
        bulk_write(self, run, rows, params)

    monkeypatch.setattr(sql.BulkMetricWriter, "__call__", counted)
    client = MlflowClient(tracking_uri)
    run_id = client.create_run("0").info.run_id
    logger = BatchLogger(run_id, client=MlflowClient(tracking_uri), flush_interval=60)
    for step in range(500):
        logger.log_metrics({f"m{k}": float(step * k) for k in range(50)}, step=step)
    logger.log_param("lr", 0.1)
    logger.close()
    for key in ("m0", "m7", "m49"):
        assert sorted(m.step for m in client.get_metric_history(run_id, key)) == list(range(500))
    assert client.get_run(run_id).data.params == {"lr": "0.1"}
    assert sum(writes) == 25_000 and max(writes) <= 10_000 and len(writes) <= 5


def test_merged_values_reach_an_active_logged_model_through_log_batch_in_pieces(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch, spool_dir: Path
) -> None:
    """With an active LoggedModel the store's own `log_batch` writes (it links the
    metrics): values merged past its 1,000-metric limit go in requests it accepts, and
    all of them reach the run and the model."""
    from autolog.batching import BatchLogger

    requests: list[int] = []
    log_batch = MlflowClient.log_batch

    def counted(self: MlflowClient, run_id: str, metrics: Any = (), **kwargs: Any) -> Any:
        requests.append(len(metrics))
        return log_batch(self, run_id, metrics=metrics, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", counted)
    model = client.create_logged_model("0")
    monkeypatch.setenv("MLFLOW_ACTIVE_MODEL_ID", model.model_id)
    run_id = client.create_run("0").info.run_id
    logger = BatchLogger(run_id, client=MlflowClient(client.tracking_uri), flush_interval=60)
    for step in range(1250):
        logger.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 1250}, step=step)
    logger.close()
    assert len(client.get_metric_history(run_id, "loss")) == 1250
    assert len(client.get_metric_history(run_id, "acc")) == 1250
    assert sum(requests) == 2500 and max(requests) <= 1000
    linked = client.get_logged_model(model.model_id).metrics or []
    assert {m.key for m in linked} == {"loss", "acc"}
