"""Regression tests, end to end into a real SQLite store, for four fixed Keras plugin bugs.

Each asserts what a user sees in MLflow: no secret in a nested optimizer config value,
``evaluate`` results logged next to a non-scalar one (which is reported, by name), the
learning rate of a mixed-precision schedule, and ``early_stopping_mode`` on Keras 2.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import autolog
from tests.plugins.keras.conftest import N_CLASSES, N_FEATURES


def _only_run(client: Any) -> Any:
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_secrets_nested_in_optimizer_config_values_are_redacted(
    mlflow_store: Any, keras: Any, make_model: Any, data: Any
) -> None:
    class RemoteAdam(keras.optimizers.Adam):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.remote = {"url": "http://u:S2@h", "password": "SECRET3"}
            self.hosts = [{"name": "a", "password": "SECRET4"}]
            self.plain = {"retries": 3, "mode": "fast"}

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config.update(remote=self.remote, hosts=self.hosts, plain=self.plain)
            return config

    autolog.autolog(frameworks=["keras"], log_models=False)
    x, y = data
    make_model(optimizer=RemoteAdam(learning_rate=0.01)).fit(x, y, epochs=1, verbose=0)

    params = _only_run(mlflow_store).data.params
    leaked = {k: v for k, v in params.items() if "SECRET" in v or "S2@" in v}
    assert leaked == {}
    assert params["optimizer_remote"] == "{'url': 'http://u:***@h', 'password': '***'}"
    assert params["optimizer_hosts"] == "[{'name': 'a', 'password': '***'}]"
    # Names and text of values with nothing to hide are as before.
    assert params["optimizer_plain"] == "{'retries': 3, 'mode': 'fast'}"
    assert params["optimizer_learning_rate"] == "0.01"


def _f1_model(keras: Any) -> Any:
    model = keras.Sequential(
        [keras.Input((N_FEATURES,)), keras.layers.Dense(N_CLASSES, activation="softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="categorical_crossentropy",
        metrics=["accuracy", keras.metrics.F1Score(average=None)],
    )
    return model


def _reports(caught: list[warnings.WarningMessage], key: str) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if issubclass(w.category, autolog.AutologWarning) and repr(key) in str(w.message)
    ]


@pytest.mark.parametrize("return_dict", [True, False])
def test_non_scalar_results_are_reported_and_the_scalars_logged(
    mlflow_store: Any, keras: Any, data: Any, return_dict: bool
) -> None:
    autolog.autolog(frameworks=["keras"], log_models=False, log_every_n_steps=1)
    x, labels = data
    y = np.eye(N_CLASSES, dtype="float32")[labels]
    model = _f1_model(keras)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        result = model.evaluate(x, y, verbose=0, return_dict=return_dict)

    run = _only_run(mlflow_store)
    run_id = run.info.run_id
    if return_dict:
        assert np.shape(result["f1_score"]) == (N_CLASSES,)
        loss, accuracy = result["loss"], result["accuracy"]
    else:
        loss, accuracy = result[0], result[1]
    assert run.data.metrics["eval_loss"] == pytest.approx(loss)
    assert run.data.metrics["eval_accuracy"] == pytest.approx(accuracy)
    assert [s for s, _ in _history(mlflow_store, run_id, "loss")] == [0, 1]
    np.testing.assert_allclose(
        [v for _, v in _history(mlflow_store, run_id, "accuracy")],
        history.history["accuracy"],
        rtol=1e-6,
    )
    assert [s for s, _ in _history(mlflow_store, run_id, "batch_loss")] == [1, 2, 3, 4]
    for key in ("eval_f1_score", "f1_score", "batch_f1_score"):
        assert key not in run.data.metrics
        reports = _reports(caught, key)
        assert len(reports) == 1, (key, [str(w.message) for w in caught])
        assert "scalar" in reports[0]


def test_learning_rate_of_a_schedule_under_mixed_precision(
    mlflow_store: Any, keras: Any, data: Any
) -> None:
    autolog.autolog(frameworks=["keras"], log_models=False)
    x, y = data
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
        model = keras.Sequential(
            [
                keras.Input((N_FEATURES,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(N_CLASSES, activation="softmax", dtype="float32"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss="sparse_categorical_crossentropy",
        )
        assert "LossScaleOptimizer" in type(model.optimizer).__name__
        model.fit(x, y, batch_size=16, epochs=3, verbose=0)  # 4 steps per epoch
    finally:
        keras.mixed_precision.set_global_policy("float32")

    run = _only_run(mlflow_store)
    rates = _history(mlflow_store, run.info.run_id, "learning_rate")
    # The rate each epoch trained with: 0.1 * 0.5 ** (steps before the epoch / 2).
    assert [s for s, _ in rates] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in rates], [0.1, 0.025, 0.00625], rtol=1e-5)


@pytest.mark.parametrize(
    ("monitor", "mode", "keras2_mode"),
    [("loss", "min", "min"), ("accuracy", "auto", "max"), ("loss", "auto", "min")],
)
def test_early_stopping_mode_is_logged(
    mlflow_store: Any,
    keras: Any,
    keras3: bool,
    make_model: Any,
    data: Any,
    monitor: str,
    mode: str,
    keras2_mode: str,
) -> None:
    autolog.autolog(frameworks=["keras"], log_models=False)
    x, y = data
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=5)
    make_model().fit(x, y, epochs=1, verbose=0, callbacks=[stopper])

    params = _only_run(mlflow_store).data.params
    # Keras 3 keeps the mode as given; Keras 2 keeps only the min/max it resolved.
    assert params["early_stopping_mode"] == (mode if keras3 else keras2_mode)
    assert params["early_stopping_monitor"] == monitor
