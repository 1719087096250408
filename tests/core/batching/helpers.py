"""Helpers shared by the batching tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient


class CountingClient:
    """The real client, counting the ``log_batch`` requests that go through it.

    From the ``fail_after``-th request on (set it to ``None`` again to end the outage),
    ``log_batch`` fails as if the network were down, and ``failed`` records the first
    metric step of each refused request (``None`` for one without metrics).
    """

    def __init__(self, real: MlflowClient, fail_after: int | None = None) -> None:
        self.real = real
        self.requests: list[tuple[int, int, int]] = []
        self.failed: list[int | None] = []
        self.fail_after = fail_after

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = (), tags: Any = ()) -> None:
        if self.fail_after is not None and len(self.requests) >= self.fail_after:
            self.failed.append(min((m.step for m in metrics), default=None))
            raise ConnectionError("simulated network failure")
        self.requests.append((len(metrics), len(params), len(tags)))
        self.real.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def spool_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.jsonl")) if path.is_dir() else []


# Rows a training run can produce, with the awkward cases MLflow's store rewrites (NaN,
# +/-inf), the same value at two steps, steps out of order and an exact duplicate.
AWKWARD_ROWS: list[tuple[str, float, int, int]] = [
    ("loss", 0.5, 1_000, 0),
    ("loss", float("nan"), 1_001, 1),
    ("loss", float("inf"), 1_002, 2),
    ("loss", 0.5, 1_003, 3),
    ("acc", float("-inf"), 1_000, 0),
    ("acc", 0.75, 1_004, 5),
    ("acc", 0.25, 1_005, 3),
    ("acc", 0.75, 1_004, 5),
]


def stored_metrics(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """Everything MLflow shows of a run's metrics: histories and the latest values."""

    def plain(value: float) -> Any:
        return "nan" if value != value else value

    keys = sorted(client.get_run(run_id).data.metrics)
    return {
        "latest": {k: plain(v) for k, v in client.get_run(run_id).data.metrics.items()},
        "history": {
            k: sorted(
                (
                    (m.step, m.timestamp, plain(m.value))
                    for m in client.get_metric_history(run_id, k)
                ),
                key=repr,  # NaN (as "nan") may tie with a number on step and timestamp
            )
            for k in keys
        },
    }


def sql_writer(client: MlflowClient) -> Any:
    """The SQL fast path chosen for ``client`` (failing the test when another is)."""
    from autolog.batching import stores
    from autolog.batching.stores.sql import SqlWriter

    writer = stores.writer_for(client)
    assert isinstance(writer, SqlWriter), f"no SQL fast path for MLflow's own store: {writer}"
    return writer


def bulk_writes_equal_log_batch(client: MlflowClient, experiment_id: str) -> None:
    """The bulk writer leaves a run exactly as MLflow's ``log_batch`` leaves another."""
    from mlflow.entities import Metric, Param

    writer = sql_writer(client)
    ours = client.create_run(experiment_id).info.run_id
    theirs = client.create_run(experiment_id).info.run_id
    writer.write_rows(ours, AWKWARD_ROWS[:4], [("lr", "0.1")])
    # A retried request: nothing may be stored twice, and the param again is no conflict.
    writer.write_rows(ours, AWKWARD_ROWS, [("lr", "0.1"), ("units", "64")])
    client.log_batch(
        theirs,
        metrics=[Metric(*row) for row in AWKWARD_ROWS],
        params=[Param("lr", "0.1"), Param("units", "64")],
    )
    expected = stored_metrics(client, theirs)
    assert stored_metrics(client, ours) == expected
    assert len(expected["history"]["loss"]) == 4 and len(expected["history"]["acc"]) == 3
    assert client.get_run(ours).data.params == client.get_run(theirs).data.params
