"""`autolog.models`: MLflow's map of installed distributions, built from a child's walk."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import importlib_metadata
import pytest

from autolog import models


@pytest.fixture
def mlflow_map() -> Iterator[Any]:
    """MLflow's requirements module with its map unset, restored afterwards."""
    from mlflow.utils import requirements_utils

    saved = requirements_utils._MODULES_TO_PACKAGES
    requirements_utils._MODULES_TO_PACKAGES = None
    try:
        yield requirements_utils
    finally:
        requirements_utils._MODULES_TO_PACKAGES = saved


def _mlflow_own_map(requirements_utils: Any) -> dict[str, list[str]]:
    requirements_utils._MODULES_TO_PACKAGES = None
    requirements_utils._init_modules_to_packages_map()
    return dict(requirements_utils._MODULES_TO_PACKAGES)


def test_the_child_walks_the_same_distributions_as_this_process() -> None:
    assert models._walk_in_child() == importlib_metadata.packages_distributions()


def test_mlflow_builds_the_same_map_from_the_child_walk(mlflow_map: Any) -> None:
    original = importlib_metadata.packages_distributions
    built = dict(models._packages_distributions())
    # The library function lent to MLflow for the build is put back.
    assert importlib_metadata.packages_distributions is original
    assert built["mlflow"]  # MLflow's own additions are there too
    assert built == _mlflow_own_map(mlflow_map)


def test_without_a_child_mlflow_walks_in_this_process(
    mlflow_map: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "")
    assert models._walk_in_child() is None
    built = dict(models._packages_distributions())
    monkeypatch.undo()
    assert built == _mlflow_own_map(mlflow_map)


@pytest.mark.parametrize(
    "answer",
    ["print('not json')", "print('[1, 2]')", "print('{\"x\": 1}')", "raise SystemExit(3)"],
)
def test_a_child_with_a_bad_answer_is_ignored(
    answer: str, mlflow_map: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "_WALK", answer)
    assert models._walk_in_child() is None
    assert dict(models._packages_distributions()) == dict(mlflow_map._MODULES_TO_PACKAGES)
    assert mlflow_map._MODULES_TO_PACKAGES["mlflow"]


# LoggedModels ---------------------------------------------------------------------------


class _Logger:
    """The part of a BatchLogger that packaging uses, recording the artifacts handed over."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        self.handed: list[tuple[str, str | None]] = []

    def log_temp_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        self.handed.append((local_dir, artifact_path))


class _DownStore:
    """A client whose every request fails, as with a tracking server that is down."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError(f"{name}: the tracking server is down")

        return fail


@pytest.fixture
def sqlite_client(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client of a fresh SQLite store, which is also MLflow's tracking URI meanwhile."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(previous)


def _regression() -> Any:
    import numpy as np

    sklearn = pytest.importorskip("sklearn.linear_model")
    x = np.arange(20, dtype="float64").reshape(10, 2)
    return sklearn.LinearRegression().fit(x, x.sum(axis=1)), x


def test_a_model_is_a_logged_model_of_the_run_with_its_final_metrics(sqlite_client: Any) -> None:
    import mlflow.sklearn
    import numpy as np

    estimator, x = _regression()
    run = sqlite_client.create_run("0")
    run_id = run.info.run_id
    for step, value in enumerate((0.5, 0.25, 0.125)):
        sqlite_client.log_metric(run_id, "loss", value, step=step)
    sqlite_client.log_param(run_id, "alpha", "0.1")
    logger = _Logger(run_id)
    model_id = models.package_model(
        logger,
        flavor="sklearn",
        loader=lambda: estimator,
        input_example=x[:3],
        client=sqlite_client,
        serialization_format="cloudpickle",
    )
    assert logger.handed == []  # nothing went to the run's artifacts
    logged = sqlite_client.get_logged_model(model_id)
    assert (logged.source_run_id, logged.name, str(logged.status)) == (run_id, "model", "READY")
    assert logged.params == {"alpha": "0.1"}
    assert [(m.key, m.step, m.value) for m in logged.metrics] == [("loss", 2, 0.125)]
    assert len(sqlite_client.get_metric_history(run_id, "loss")) == 3  # not logged twice
    outputs = sqlite_client.get_run(run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [model_id]
    loaded = mlflow.sklearn.load_model(f"models:/{model_id}")
    np.testing.assert_allclose(loaded.predict(x), estimator.predict(x))
    # Later metrics (evaluate) are linked to the same model.
    sqlite_client.log_metric(run_id, "eval_loss", 0.3, timestamp=1000, step=0)
    assert models.link_metrics(sqlite_client, run_id, {"eval_loss": 0.3}, 0, 1000) == model_id
    linked = {m.key: m.value for m in sqlite_client.get_logged_model(model_id).metrics}
    assert linked == {"loss": 0.125, "eval_loss": 0.3}
    assert len(sqlite_client.get_metric_history(run_id, "eval_loss")) == 1


def test_another_process_finds_the_runs_model_in_the_store(sqlite_client: Any) -> None:
    estimator, _ = _regression()
    run_id = sqlite_client.create_run("0").info.run_id
    model_id = models.package_model(
        _Logger(run_id),
        flavor="sklearn",
        loader=lambda: estimator,
        client=sqlite_client,
        serialization_format="cloudpickle",
    )
    models._run_models.clear()  # as in a process that did not package it
    assert models.model_of_run(sqlite_client, run_id) == model_id
    other = sqlite_client.create_run("0").info.run_id
    assert models.link_metrics(sqlite_client, other, {"eval_loss": 1.0}, 0, 1) is None


@pytest.mark.parametrize("run_id", ["a-run-in-a-store-that-is-down", None])
def test_without_a_store_the_model_goes_to_the_runs_artifacts(run_id: str | None) -> None:
    import mlflow.sklearn

    estimator, x = _regression()
    logger = _Logger(run_id)
    assert (
        models.package_model(
            logger,
            flavor="sklearn",
            loader=lambda: estimator,
            client=_DownStore(),
            serialization_format="cloudpickle",
        )
        is None
    )
    ((local, artifact_path),) = logger.handed
    assert artifact_path == "model"
    assert (mlflow.sklearn.load_model(local).predict(x) == estimator.predict(x)).all()


def test_the_last_values_are_read_in_one_request_or_from_the_histories(
    sqlite_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = sqlite_client.create_run("0").info.run_id
    sqlite_client.log_metric(run_id, "loss", 0.5, timestamp=10, step=3)
    sqlite_client.log_metric(run_id, "loss", 0.7, timestamp=20, step=1)  # an earlier step
    sqlite_client.log_metric(run_id, "acc", 0.9, timestamp=30, step=3)
    one_request = {
        (m.key, m.value, m.step, m.timestamp) for m in models._latest_metrics(sqlite_client, run_id)
    }
    assert one_request == {("loss", 0.5, 3, 10), ("acc", 0.9, 3, 30)}
    real_get_run = sqlite_client.get_run

    def get_run_without_entries(run: str) -> Any:
        found = real_get_run(run)
        del found.data._metric_objs
        return found

    monkeypatch.setattr(sqlite_client, "get_run", get_run_without_entries)
    histories = {
        (m.key, m.value, m.step, m.timestamp) for m in models._latest_metrics(sqlite_client, run_id)
    }
    assert histories == one_request
