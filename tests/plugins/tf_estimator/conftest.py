"""Fixtures for the Estimator plugin tests: tiny data, tiny models, an enabled plugin.

Everything that needs ``tf.estimator`` is skipped where it does not exist (TensorFlow >=
2.16); the discovery test that checks the plugin is reported unavailable runs there.
Training is kept to a few dozen steps on 64 rows so the whole module runs in minutes on two
cores; every ``model_dir`` lives under ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("AUTOLOG_TESTING", "1")

HAS_ESTIMATOR = importlib.util.find_spec("tensorflow_estimator") is not None

needs_estimator = pytest.mark.skipif(
    not HAS_ESTIMATOR, reason="tf.estimator needs TensorFlow <= 2.15 and tensorflow-estimator"
)

N_ROWS = 64
BATCH = 8


@pytest.fixture(scope="session")
def tf() -> Any:
    if not HAS_ESTIMATOR:
        pytest.skip("tf.estimator is not available")
    import tensorflow

    tensorflow.get_logger().setLevel("ERROR")
    tensorflow.compat.v1.logging.set_verbosity(tensorflow.compat.v1.logging.ERROR)
    return tensorflow


@pytest.fixture(scope="session")
def data() -> tuple[Any, Any]:
    """64 rows, 2 features, a label that a linear model can learn."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((N_ROWS, 2), dtype=np.float32)
    y = (x.sum(axis=1) > 1.0).astype(np.int32)
    return x, y


@pytest.fixture
def input_fn(tf: Any, data: tuple[Any, Any]) -> Callable[..., Any]:
    """``input_fn(repeat=True)``: a dataset of ({"x": ...}, label) batches."""
    x, y = data

    def make(repeat: bool = True) -> Callable[[], Any]:
        def fn() -> Any:
            ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(BATCH)
            return ds.repeat() if repeat else ds

        return fn

    return make


@pytest.fixture
def feature_columns(tf: Any) -> list[Any]:
    return [tf.feature_column.numeric_column("x", shape=(2,))]


@pytest.fixture
def serving_input_fn(tf: Any, feature_columns: list[Any]) -> Any:
    """Serving input that takes raw float tensors (simple to call after reloading)."""
    # A tensor stands in for the feature's dtype and shape; the batch size stays open.
    return tf.estimator.export.build_raw_serving_input_receiver_fn({"x": tf.zeros([1, 2])})


@pytest.fixture
def custom_model_fn(tf: Any) -> Callable[..., Any]:
    """A logistic regression with a custom scalar summary and an eval metric.

    ``params``: ``learning_rate`` (required), ``fail`` (raise while building the graph).
    """

    def model_fn(features: Any, labels: Any, mode: Any, params: dict[str, Any]) -> Any:
        if params.get("fail"):
            raise RuntimeError("model_fn failed on purpose")
        weights = tf.compat.v1.get_variable("weights", [2], initializer=tf.zeros_initializer())
        bias = tf.compat.v1.get_variable("bias", [], initializer=tf.zeros_initializer())
        logits = tf.reduce_sum(features["x"] * weights, axis=1) + bias
        probabilities = tf.sigmoid(logits)
        if mode == tf.estimator.ModeKeys.PREDICT:
            return tf.estimator.EstimatorSpec(
                mode,
                predictions={"probability": probabilities},
                export_outputs={
                    "serving_default": tf.estimator.export.PredictOutput(
                        {"probability": probabilities}
                    )
                },
            )
        labels = tf.cast(labels, tf.float32)
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
        tf.compat.v1.summary.scalar("mean_probability", tf.reduce_mean(probabilities))
        predicted = tf.cast(probabilities > 0.5, tf.float32)
        metrics = {"custom_accuracy": tf.compat.v1.metrics.accuracy(labels, predicted)}
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(params["learning_rate"])
        train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
        return tf.estimator.EstimatorSpec(
            mode, loss=loss, train_op=train_op, eval_metric_ops=metrics
        )

    return model_fn


@pytest.fixture
def make_config(tf: Any) -> Callable[..., Any]:
    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("save_summary_steps", 5)
        kwargs.setdefault("log_step_count_steps", 5)
        kwargs.setdefault("tf_random_seed", 7)
        return tf.estimator.RunConfig(**kwargs)

    return make


@pytest.fixture
def store() -> Iterator[Any]:
    """An in-memory tracking store that every autolog write goes to."""
    from autolog.testing import capture

    with capture() as memory:
        yield memory


@pytest.fixture
def enable(store: Any) -> Callable[..., list[str]]:
    """``enable(**tf_estimator_options)``: autolog on, for this plugin only."""
    import autolog

    def on(**options: Any) -> list[str]:
        return autolog.autolog(frameworks=["tf_estimator"], tf_estimator=options)

    return on


@pytest.fixture
def sink(store: Any) -> Any:
    """A run sink backed by the in-memory store, for exercising pieces without autolog()."""
    return store.open(None, {})


@pytest.fixture
def artifact_dir(store: Any) -> Callable[[Any], Path]:
    """``artifact_dir(run)``: where the in-memory store keeps the run's artifacts."""

    def where(run: Any) -> Path:
        return Path(store.artifact_root) / run.run_id

    return where


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """MLflow pointed at a fresh SQLite store in ``tmp_path`` (also the working directory,
    where MLflow puts a SQLite store's artifacts, under ``./mlruns``); its client."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    yield mlflow.MlflowClient(uri)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
