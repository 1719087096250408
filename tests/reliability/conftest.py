"""Reliability suite: one real PostgreSQL, one real ``mlflow server`` on it, for the session.

* ``postgres``: a :class:`tests.support.postgres.PostgresServer` (temp data dir, 127.0.0.1,
  stopped by its pid at the end). Where PostgreSQL is not installed every test that needs it
  is skipped with the reason, and the end of the run says so in a banner.
* ``pg_server``: ``mlflow server --backend-store-uri postgresql+psycopg2://...`` through
  :class:`tests.support.mlflow_server.MlflowServer` (one uvicorn worker, MLflow's job runner
  off: it is not used here and triples start-up time).
* ``tracking``: per test, MLflow pointed at that server, a fresh experiment, and a spool dir
  of its own (``AUTOLOG_SPOOL_DIR``).

Tests record their figures (faults survived, values checked, injection points...) through
``tests.reliability._support.record``; they land in ``benchmarks/results/*.json`` and in the
terminal summary.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import _support
from tests.support.mlflow_server import MlflowServer
from tests.support.postgres import PostgresServer, unavailable_reason

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

PG_UNAVAILABLE = unavailable_reason()
# MLflow's job runner (huey consumers) is not used here and triples the server's start-up.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    write = terminalreporter.write_line
    if PG_UNAVAILABLE is not None:
        bar = "!" * 78
        terminalreporter.write_sep("!", "POSTGRESQL NOT AVAILABLE", red=True, bold=True)
        for line in (
            bar,
            "!! Every reliability test that needs the PostgreSQL-backed mlflow server was",
            "!! SKIPPED (batching and Keras on PostgreSQL, concurrency, fault injection,",
            "!! the exception-safety sweep, secrets in the store).",
            f"!! Reason: {PG_UNAVAILABLE}",
            bar,
        ):
            write(line, red=True, bold=True)
    figures = _support.figures()
    if figures:
        terminalreporter.write_sep("-", "reliability figures")
        for name, value in figures.items():
            write(f"{name}: {value}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if PG_UNAVAILABLE is not None:
        pytest.skip(f"PostgreSQL not available: {PG_UNAVAILABLE}")
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    artifacts = tmp_path_factory.mktemp("pg-artifacts")
    server = MlflowServer(postgres.uri, artifacts, workers=1, env=SERVER_ENV)
    server.start()
    try:
        yield server
    finally:
        server.close()


class Tracking:
    """MLflow pointed at the PostgreSQL-backed server, for one test."""

    def __init__(self, server: MlflowServer, postgres: PostgresServer, spool: Path) -> None:
        from mlflow import MlflowClient

        self.server = server
        self.postgres = postgres
        self.url = server.url
        self.spool = spool
        self.client = MlflowClient(server.url)
        self.experiment_name = f"reliability-{uuid.uuid4().hex[:12]}"
        self.experiment_id = self.client.create_experiment(self.experiment_name)

    def runs(self) -> list[Any]:
        return _support.all_runs(self.client, self.experiment_id)

    def run(self, run_id: str) -> _support.RunContents:
        return _support.run_contents(self.client, run_id)

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should log where this test logs."""
        return {
            **os.environ,
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_EXPERIMENT_NAME": self.experiment_name,
            "AUTOLOG_SPOOL_DIR": str(self.spool),
        }


@pytest.fixture
def tracking(
    pg_server: MlflowServer,
    postgres: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Tracking]:
    import mlflow

    if not pg_server.running:  # a test that killed it failed before restarting it
        pg_server.restart()
    spool = tmp_path / "spool"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pg_server.url)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(spool))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    # set_experiment below puts the experiment in os.environ: a value now, so that the
    # monkeypatch takes it out again after the test.
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "")
    view = Tracking(pg_server, postgres, spool)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", view.experiment_name)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(pg_server.url)
    mlflow.set_experiment(experiment_id=view.experiment_id)
    try:
        yield view
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        from mlflow.tracking import fluent

        fluent._active_experiment_id = None
        mlflow.set_tracking_uri(previous)


@pytest.fixture(autouse=True)
def _autolog_reset() -> Iterator[None]:
    """Every test starts and ends with autolog off and nothing remembered."""
    import autolog
    from autolog import safety, session

    safety.reset_reported()
    yield
    autolog.disable()
    session.instance_runs.clear()
    safety.set_silent(False)
