"""End to end: autolog.autolog(frameworks=["keras"]) into a real SQLite MLflow store.

Asserts what a user would look at in MLflow: params, metric histories with their steps,
tags, artifacts, and models that load back and predict what the in-memory model predicts.
"""

from __future__ import annotations

import filecmp
import os
from typing import Any

import numpy as np
import pytest

import autolog
from autolog_keras.compat import flavor_of


def _only_run(client: Any) -> Any:
    runs = _runs(client)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def _runs(client: Any) -> list[Any]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(reversed(client.search_runs(experiments)))  # oldest first


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _artifacts(client: Any, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found |= _artifacts(client, run_id, item.path)
        else:
            found.add(item.path)
    return found


def test_a_fit_lands_in_mlflow_complete(
    mlflow_store: Any, keras: Any, make_model: Any, data: Any, tmp_path: Any
) -> None:
    import mlflow

    autolog.autolog(frameworks=["keras"], log_every_n_steps=2, log_models=True)
    x, y = data
    model = make_model("functional")
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=5)
    history = model.fit(
        x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0, callbacks=[stopper]
    )
    client = mlflow_store
    run = _only_run(client)
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"

    params = run.data.params
    expected = {
        "epochs": "3",
        "batch_size": "16",
        "validation_split": "0.25",
        "num_layers": str(len(model.layers)),
        "total_params": str(model.count_params()),
        "trainable_params": str(model.count_params()),
        "optimizer_name": "Adam",
        "optimizer_learning_rate": "0.01",
        "loss": "sparse_categorical_crossentropy",
        "metrics": "accuracy",
        "early_stopping_monitor": "loss",
        "early_stopping_patience": "5",
        "dataset_train_shape": "(48, 8)",
        "dataset_train_samples": "48",
        "dataset_validation_samples": "16",
    }
    assert {k: params.get(k) for k in expected} == expected
    assert "optimizer_epsilon" in params and "optimizer_beta_1" in params

    # Epoch metrics: one value per epoch at step = epoch, as Keras reported them.
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        logged = _history(client, run_id, key)
        assert [s for s, _ in logged] == [0, 1, 2], key
        np.testing.assert_allclose([v for _, v in logged], history.history[key], rtol=1e-6)
    assert [s for s, _ in _history(client, run_id, "learning_rate")] == [0, 1, 2]
    assert len(_history(client, run_id, "epoch_duration")) == 3
    # Batch metrics: every 2nd of 3 x 3 optimizer steps, at the global step.
    assert [s for s, _ in _history(client, run_id, "batch_loss")] == [2, 4, 6, 8]

    tags = run.data.tags
    assert tags["autolog.plugin"] == "keras"
    assert tags["mlflow.autologging"] == "keras"
    assert "Total params" in tags["model_summary"]

    artifacts = _artifacts(client, run_id)
    assert {"model.keras", "model_summary.txt", "model/MLmodel"} <= artifacts

    # The .keras file loads with Keras itself.
    local = client.download_artifacts(run_id, "model.keras", str(tmp_path))
    expected_predictions = model.predict(x, verbose=0)
    reloaded = keras.models.load_model(local)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected_predictions, rtol=1e-5)

    # The MLflow model loads with the Keras flavor and as a pyfunc.
    uri = f"runs:/{run_id}/model"
    flavored = mlflow.keras.load_model(uri)
    np.testing.assert_allclose(flavored.predict(x, verbose=0), expected_predictions, rtol=1e-5)
    pyfunc = mlflow.pyfunc.load_model(uri)
    np.testing.assert_allclose(
        np.asarray(pyfunc.predict(x)), expected_predictions, rtol=1e-5, atol=1e-6
    )
    assert pyfunc.metadata.run_id == run_id
    if flavor_of(model).mlflow_flavor == "keras":
        # Packaged from the snapshot, not saved a second time: the same bytes.
        packaged = client.download_artifacts(run_id, "model/data/model.keras", str(tmp_path))
        assert filecmp.cmp(packaged, local, shallow=False)
    requirements = client.download_artifacts(run_id, "model/requirements.txt", str(tmp_path))
    with open(requirements, encoding="utf-8") as handle:
        pins = handle.read()
    assert "mlflow" in pins and ("keras==" in pins or "tensorflow" in pins)


def test_evaluate_after_fit_and_sequential_fits(
    mlflow_store: Any, make_model: Any, data: Any
) -> None:
    autolog.autolog(frameworks=["keras"], log_models=False)
    x, y = data
    model = make_model()
    model.fit(x, y, epochs=1, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=2, verbose=0)
    first, second = _runs(mlflow_store)
    assert first.data.params["epochs"] == "1" and second.data.params["epochs"] == "2"
    assert first.data.metrics["eval_loss"] == pytest.approx(loss)
    assert first.data.metrics["eval_accuracy"] == pytest.approx(accuracy)
    assert "eval_loss" not in second.data.metrics
    assert first.info.status == second.info.status == "FINISHED"


def test_fit_in_the_users_run(mlflow_store: Any, make_model: Any, data: Any) -> None:
    import mlflow

    autolog.autolog(frameworks=["keras"], log_models=False)
    x, y = data
    with mlflow.start_run() as active:
        make_model().fit(x, y, epochs=2, verbose=0)
        assert mlflow.active_run().info.run_id == active.info.run_id
        run = mlflow_store.get_run(active.info.run_id)
        assert run.info.status == "RUNNING"
        assert [s for s, _ in _history(mlflow_store, active.info.run_id, "loss")] == [0, 1]
    assert len(_runs(mlflow_store)) == 1


def test_a_failing_fit_fails_the_run(
    mlflow_store: Any, keras: Any, make_model: Any, data: Any
) -> None:
    autolog.autolog(frameworks=["keras"], log_models=False)

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                raise ArithmeticError("diverged")

    x, y = data
    with pytest.raises(ArithmeticError, match="diverged"):
        make_model().fit(x, y, epochs=3, verbose=0, callbacks=[Boom()])
    run = _only_run(mlflow_store)
    assert run.info.status == "FAILED"
    assert [s for s, _ in _history(mlflow_store, run.info.run_id, "loss")] == [0]


def test_models_of_two_fits_do_not_mix(
    mlflow_store: Any, make_model: Any, data: Any, tmp_path: Any, keras: Any
) -> None:
    autolog.autolog(frameworks=["keras"], log_models=False)
    x, y = data
    first, second = make_model(), make_model()
    first.fit(x, y, epochs=1, verbose=0)
    second.fit(x, y, epochs=1, verbose=0)
    for model, run in zip((first, second), _runs(mlflow_store), strict=True):
        path = mlflow_store.download_artifacts(
            run.info.run_id, "model.keras", str(tmp_path / run.info.run_id)
        )
        assert os.path.exists(path)
        np.testing.assert_allclose(
            keras.models.load_model(path).predict(x, verbose=0),
            model.predict(x, verbose=0),
            rtol=1e-5,
        )
