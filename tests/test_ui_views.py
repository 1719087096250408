"""What MLflow's UI shows of an autologged run, read through MLflow's public API.

``tools/ui_screenshots.py`` photographs these pages; this test reads the same facts the
pages are drawn from, for each way a run reaches the store:

- the run page: the run, its metrics (each marked with the model it is linked to), its
  logged model and its datasets (name, digest, context);
- the model page: the LoggedModel, its source run, its linked metrics (``eval_*`` with the
  dataset they were measured on) and its flavors;
- the Models tab: the experiment's LoggedModels;
- the Datasets view: each dataset input with its digest, schema and profile.

Cases: a Keras fit, a Keras fit + evaluate, an Estimator train + evaluate + export (the
TensorFlow 2.15 stack), and a Keras run logged while its store was down and delivered by
``autolog sync`` once the store is back. Stores are real (SQLite, and a real ``mlflow
server`` for the outage, stopped by its pid).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autolog
from tests.support.mlflow_server import MlflowServer, free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Shown:
    """What the run page, the model page, the Models tab and the Datasets view show."""

    status: str
    metrics: dict[str, float]
    models: list[Any]  # the run's LoggedModels (run page, Models tab)
    linked: dict[str, dict[str, Any]] = field(default_factory=dict)  # the model page
    datasets: dict[str, Any] = field(default_factory=dict)  # context -> Dataset
    flavors: set[str] = field(default_factory=set)
    artifacts: set[str] = field(default_factory=set)


def shown(client: Any, run_id: str) -> Shown:
    import mlflow

    run = client.get_run(run_id)
    outputs = run.outputs.model_outputs if run.outputs else []
    models = [client.get_logged_model(o.model_id) for o in outputs]
    tab = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    # The Models tab lists exactly the run's models (one run per experiment here).
    assert sorted(m.model_id for m in tab) == sorted(m.model_id for m in models)
    view = Shown(run.info.status, dict(run.data.metrics), models)
    if models:
        model = models[-1]
        view.linked = {
            m.key: {"value": m.value, "dataset": (m.dataset_name, m.dataset_digest)}
            for m in model.metrics or []
        }
        view.flavors = set(mlflow.models.get_model_info(f"models:/{model.model_id}").flavors)
    for entry in run.inputs.dataset_inputs if run.inputs else []:
        context = {t.key: t.value for t in entry.tags}["mlflow.data.context"]
        view.datasets[context] = entry.dataset
    view.artifacts = _artifacts(client, run_id)
    return view


def _artifacts(client: Any, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def _digest(x: Any, y: Any) -> str:
    """The digest MLflow itself gives these arrays as a dataset."""
    import mlflow.data

    return str(mlflow.data.from_numpy(x, targets=y).digest)


def _only_run(client: Any) -> str:
    experiments = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(experiments)
    return str(run.info.run_id)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import mlflow

    monkeypatch.chdir(tmp_path)  # a SQLite store's artifacts go to ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    yield mlflow.MlflowClient(uri)
    mlflow.set_tracking_uri(None)


@pytest.fixture
def keras() -> Any:
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    return keras


def _data(rows: int, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8)).astype("float32")
    return x, (x.sum(axis=1) > 0).astype("int64")


def _model(keras: Any) -> Any:
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _keras_flavor(keras: Any) -> str:
    """MLflow's flavor for this Keras: ``keras`` for Keras 3, ``tensorflow`` for tf.keras 2."""
    return "keras" if int(keras.__version__.split(".")[0]) >= 3 else "tensorflow"


def _assert_the_model_page(view: Shown, run_id: str, flavor: str) -> Any:
    (model,) = view.models
    assert model.source_run_id == run_id
    assert model.name == "model"
    assert str(model.status) == "READY"
    assert flavor in view.flavors and "python_function" in view.flavors
    # Every final value on the run page is linked to the model (its page lists them).
    assert {key: entry["value"] for key, entry in view.linked.items()} == view.metrics
    return model


def test_a_keras_fit(store: Any, keras: Any) -> None:
    autolog.autolog(frameworks=["keras"], log_models=True)
    x, y = _data(64, 0)
    xv, yv = _data(16, 1)
    _model(keras).fit(x, y, validation_data=(xv, yv), epochs=2, batch_size=16, verbose=0)
    run_id = _only_run(store)
    view = shown(store, run_id)

    assert view.status == "FINISHED"
    _assert_the_model_page(view, run_id, _keras_flavor(keras))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(view.linked)
    assert set(view.datasets) == {"train", "validation"}
    assert view.datasets["train"].digest == _digest(x, y)
    assert view.datasets["validation"].digest == _digest(xv, yv)
    for dataset in view.datasets.values():
        assert json.loads(dataset.schema)["mlflow_tensorspec"]["features"]
    assert json.loads(view.datasets["train"].profile)["features_shape"] == [64, 8]
    # One copy of the model: the LoggedModel's, nothing under the run's artifacts.
    assert not [path for path in view.artifacts if path.startswith("model/") or ".keras" in path]


def test_a_keras_fit_and_evaluate(store: Any, keras: Any) -> None:
    autolog.autolog(frameworks=["keras"], log_models=True)
    x, y = _data(64, 0)
    xt, yt = _data(24, 2)
    model = _model(keras)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    loss, accuracy = model.evaluate(xt, yt, verbose=0)
    run_id = _only_run(store)
    view = shown(store, run_id)

    _assert_the_model_page(view, run_id, _keras_flavor(keras))
    assert set(view.datasets) == {"train", "eval"}
    eval_data = view.datasets["eval"]
    assert eval_data.digest == _digest(xt, yt)
    # The model page shows the eval_* values measured on the eval dataset.
    assert view.linked["eval_loss"]["value"] == pytest.approx(loss)
    assert view.linked["eval_accuracy"]["value"] == pytest.approx(accuracy)
    assert view.linked["eval_accuracy"]["dataset"] == (eval_data.name, eval_data.digest)
    assert view.linked["loss"]["dataset"] == (None, None)


@pytest.mark.tf215
def test_an_estimator_train_evaluate_and_export(store: Any, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow_estimator")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    autolog.autolog(frameworks=["tf_estimator"])
    x, y = _data(64, 0)

    def input_fn() -> Any:
        return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(16).repeat()

    est = tf.estimator.LinearClassifier(
        [tf.feature_column.numeric_column("x", shape=(8,))], model_dir=str(tmp_path / "linear")
    )
    est.train(input_fn, steps=10)
    result = est.evaluate(input_fn, steps=2)
    receiver = tf.estimator.export.build_raw_serving_input_receiver_fn({"x": tf.zeros([1, 8])})
    est.export_saved_model(str(tmp_path / "export"), receiver)
    run_id = _only_run(store)
    view = shown(store, run_id)

    assert view.status == "FINISHED"
    _assert_the_model_page(view, run_id, "tensorflow")
    assert view.linked["eval_accuracy"]["value"] == pytest.approx(float(result["accuracy"]))
    assert "loss" in view.linked
    # Estimator's data comes out of input_fn inside TensorFlow's graph: no dataset inputs.
    assert view.datasets == {}
    assert not [path for path in view.artifacts if path.endswith("saved_model.pb")]


@pytest.mark.server
def test_a_keras_run_delivered_by_sync_after_an_outage(
    keras: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logged while nothing listens at the store's address; delivered once it answers.

    The run log holds the model (as its saved directory) and the dataset inputs (as plain
    records) like every other write: after ``autolog sync`` the run has its params and
    metrics, its LoggedModel (one copy: no ``model/`` or ``model.keras`` run artifacts)
    and its train dataset, as a run logged with the store up has.
    """
    import mlflow

    from autolog.batching.flusher import ENGINE

    monkeypatch.chdir(tmp_path)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    spool = tmp_path / "spool"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(spool))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    try:
        autolog.autolog(frameworks=["keras"], log_models=True, silent=True)
        x, y = _data(64, 0)
        model = _model(keras)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        model.evaluate(x, y, verbose=0)
        autolog.disable()
    finally:
        mlflow.set_tracking_uri(None)
        with ENGINE.lock:  # spooled on purpose: not for the exit summary
            ENGINE.left_in_spool.clear()
    assert list(spool.glob("*.jsonl"))

    backend = f"sqlite:///{tmp_path}/server.db"
    with MlflowServer(backend, tmp_path / "artifacts", port=port, workers=1) as server:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
        sync = subprocess.run(
            [sys.executable, "-m", "autolog", "sync", "--no-progress", str(spool)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert sync.returncode == 0, sync.stdout + sync.stderr
        client = mlflow.MlflowClient(server.url)
        run_id = _only_run(client)
        mlflow.set_tracking_uri(server.url)  # models:/ URIs resolve against it
        try:
            view = shown(client, run_id)
        finally:
            mlflow.set_tracking_uri(None)

    assert view.status == "FINISHED"
    assert {"loss", "accuracy", "eval_loss", "eval_accuracy"} <= set(view.metrics)
    assert len(view.models) == 1 and view.models[0].source_run_id == run_id
    assert {"loss", "accuracy"} <= set(view.linked)
    assert view.flavors & {"keras", "tensorflow"}  # Keras 3; tf.keras 2 is tensorflow's
    assert "train" in view.datasets and view.datasets["train"].digest
    assert not [p for p in view.artifacts if p.startswith("model/") or p == "model.keras"]
