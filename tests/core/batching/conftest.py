"""Fixtures for the batching layer's tests: real stores only (SQLite files, mlflow server)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support.mlflow_server import MlflowServer


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spool"
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store with MLflow's schema, made once (migrations take seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spool_dir: Path, empty_store: Path
) -> Iterator[str]:
    """A fresh SQLite tracking store, set as MLflow's tracking URI."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri)


@pytest.fixture(scope="module")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, empty_store: Path
) -> Iterator[MlflowServer]:
    """One real ``mlflow server`` per test module (starting one takes seconds)."""
    root = tmp_path_factory.mktemp("server")
    shutil.copy(empty_store, root / "server.db")  # migrated already: a faster start
    with MlflowServer(f"sqlite:///{root / 'server.db'}", root / "artifacts", workers=1) as server:
        yield server


@pytest.fixture(autouse=True)
def _forget_spooled_files() -> Iterator[None]:
    """Tests leave spool files on purpose; keep them out of the exit summary of pytest."""
    yield
    from autolog.batching.flusher import ENGINE

    with ENGINE.lock:
        ENGINE.left_in_spool.clear()
