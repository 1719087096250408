"""Fixtures for the scikit-learn plugin tests.

The plugin is a separate distribution, ``examples/plugins/autolog-sklearn``; the test
environment has it installed (``pip install -e examples/plugins/autolog-sklearn``), exactly
as a user's environment would. Nothing is installed at test time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("AUTOLOG_TESTING", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

INSTALL_HINT = "pip install -e examples/plugins/autolog-sklearn"


@pytest.fixture(autouse=True)
def _plugin_installed() -> None:
    """Fail loudly (not skip) when the environment lacks the plugin distribution."""
    from autolog.testing import plugin_info

    try:
        info = plugin_info("sklearn")
    except LookupError:
        info = None
    if info is None or info.distribution is None:
        pytest.fail(
            f"the autolog-sklearn distribution is not installed in this environment: {INSTALL_HINT}"
        )


@pytest.fixture(scope="session")
def digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


@pytest.fixture
def memory() -> Iterator[Any]:
    """autolog's in-memory run store (no MLflow)."""
    from autolog.testing import capture

    with capture() as store:
        yield store


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh SQLite tracking store in ``tmp_path``; yields an ``MlflowClient`` on it."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(uri)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(previous)
