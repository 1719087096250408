"""The line naming a run autolog created and where to look at it (`mlflow_backend.where_to_look`)."""

from __future__ import annotations

import os

import pytest

from autolog.mlflow_backend import where_to_look

RUN = "0123456789abcdef0123456789abcdef"


def test_a_tracking_server_gets_the_runs_page() -> None:
    assert where_to_look(RUN, "FINISHED", "http://127.0.0.1:5000/") == (
        f"autolog: run {RUN} (FINISHED): http://127.0.0.1:5000/#/runs/{RUN}"
    )


def test_a_password_in_the_uri_is_masked() -> None:
    line = where_to_look(RUN, "FAILED", "https://me:hunter2@mlflow.example/")
    assert "hunter2" not in line and "https://me:***@mlflow.example/#/runs/" in line
    line = where_to_look(RUN, "FINISHED", "postgresql://me:hunter2@db/mlflow")
    assert "hunter2" not in line and "postgresql://me:***@db/mlflow" in line


@pytest.mark.parametrize(
    ("uri", "store"),
    [
        ("sqlite:////tmp/x y/mlflow.db", "'sqlite:////tmp/x y/mlflow.db'"),
        ("file:///tmp/mlruns", "file:///tmp/mlruns"),
        ("mlruns", "file://" + os.path.abspath("mlruns")),
    ],
)
def test_a_local_store_gets_the_mlflow_ui_command(uri: str, store: str) -> None:
    line = where_to_look(RUN, "KILLED", uri)
    assert line.startswith(f"autolog: run {RUN} (KILLED) is in ")
    assert f"mlflow ui --backend-store-uri {store} and open http://127.0.0.1:5000/#/runs/{RUN}" in (
        line
    )


def test_another_store_is_named() -> None:
    assert (
        where_to_look(RUN, "FINISHED", "databricks")
        == f"autolog: run {RUN} (FINISHED) is in databricks"
    )
