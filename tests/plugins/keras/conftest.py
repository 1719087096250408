"""Fixtures for the Keras plugin tests: tiny data, tiny models, an enabled plugin, stores.

Tests run against whichever Keras the environment has: Keras 3 (``keras``) in the TF 2.21
env, ``tf.keras`` 2.15 (the ``keras`` 2.15 package) in the TF 2.15 env. ``import keras``
gives the right one in both. Models are a few hundred parameters trained for 2-3 epochs on
64 rows, so the suite stays within minutes on two cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("AUTOLOG_TESTING", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

N_ROWS = 64
N_FEATURES = 8
N_CLASSES = 3


@pytest.fixture(scope="session")
def keras() -> Any:
    import keras as keras_module

    try:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    except ImportError:  # Keras 3 on another backend
        pass
    return keras_module


@pytest.fixture(scope="session")
def keras3(keras: Any) -> bool:
    return int(keras.__version__.split(".")[0]) >= 3


@pytest.fixture
def data() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_ROWS, N_FEATURES)).astype("float32")
    y = rng.integers(0, N_CLASSES, size=(N_ROWS,)).astype("int64")
    return x, y


def _compile(model: Any, keras: Any, optimizer: Any = None) -> Any:
    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.fixture
def make_model(keras: Any) -> Callable[..., Any]:
    """``make_model(kind="sequential"|"functional"|"subclassed", optimizer=None)``."""

    def make(kind: str = "sequential", optimizer: Any = None) -> Any:
        if kind == "sequential":
            model = keras.Sequential(
                [
                    keras.Input((N_FEATURES,)),
                    keras.layers.Dense(8, activation="relu"),
                    keras.layers.Dense(N_CLASSES, activation="softmax"),
                ]
            )
        elif kind == "functional":
            inputs = keras.Input((N_FEATURES,), name="features")
            hidden = keras.layers.Dense(8, activation="relu")(inputs)
            outputs = keras.layers.Dense(N_CLASSES, activation="softmax")(hidden)
            model = keras.Model(inputs, outputs)
        elif kind == "subclassed":
            model = _subclassed(keras)
        else:
            raise ValueError(kind)
        return _compile(model, keras, optimizer)

    return make


def _subclassed(keras: Any) -> Any:
    class TinyNet(keras.Model):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.out = keras.layers.Dense(N_CLASSES, activation="softmax")

        def call(self, inputs: Any) -> Any:
            return self.out(self.hidden(inputs))

    return TinyNet()


@pytest.fixture
def memory() -> Iterator[Any]:
    """autolog's in-memory run store (no MLflow)."""
    from autolog.testing import capture

    with capture() as store:
        yield store


@pytest.fixture
def enable() -> Callable[..., list[str]]:
    """``enable(log_every_n_steps=None, log_models=False, **keras_options)``."""
    import autolog

    def on(
        log_every_n_steps: int | None = None, log_models: bool = False, **options: Any
    ) -> list[str]:
        return autolog.autolog(
            frameworks=["keras"],
            log_every_n_steps=log_every_n_steps,
            log_models=log_models,
            keras=options,
        )

    return on


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An SQLite store with MLflow's schema, created once (migrations take seconds)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return str(path)


@pytest.fixture
def mlflow_store(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, _empty_store: str
) -> Iterator[Any]:
    """A fresh SQLite tracking store; yields an ``MlflowClient`` on it."""
    import shutil

    import mlflow
    from mlflow import MlflowClient

    shutil.copyfile(_empty_store, tmp_path / "mlflow.db")
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


def predictions_at_epoch_end(keras: Any, x: Any) -> Any:
    """A callback keeping the model's predictions on ``x`` at the end of each epoch."""

    class Recorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.predictions: list[Any] = []

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.predictions.append(self.model.predict(x, verbose=0))

    return Recorder()
