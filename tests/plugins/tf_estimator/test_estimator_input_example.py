"""The exported model's input example: the first feature rows the training step read.

End to end into a real SQLite store (the example loads and pyfunc predicts on it), the
serving receivers it fits and those it does not, and the input read exactly as often as
without autolog.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

import autolog
from autolog.safety import AutologWarning
from autolog_tf_estimator import examples
from autolog_tf_estimator.hooks import make_loss_hook

from .conftest import BATCH

pytestmark = pytest.mark.tf215


def _model_id(client: MlflowClient) -> str:
    (run,) = client.search_runs(["0"])
    (output,) = run.outputs.model_outputs
    return str(output.model_id)


@pytest.mark.parametrize("kind", ["linear", "dnn"])
def test_raw_receiver_export_has_the_first_training_rows_as_example(
    tf: Any,
    tracking: MlflowClient,
    kind: str,
    feature_columns: list[Any],
    make_config: Any,
    input_fn: Any,
    serving_input_fn: Any,
    data: Any,
    tmp_path: Path,
) -> None:
    autolog.autolog(frameworks=["tf_estimator"])
    model_dir = str(tmp_path / kind)
    if kind == "linear":
        est = tf.estimator.LinearClassifier(
            feature_columns, model_dir=model_dir, config=make_config()
        )
    else:
        est = tf.estimator.DNNClassifier(
            [4], feature_columns, model_dir=model_dir, config=make_config()
        )
    est.train(input_fn(), steps=6)
    est.export_saved_model(str(tmp_path / "export"), serving_input_fn)

    uri = f"models:/{_model_id(tracking)}"
    info = mlflow.models.get_model_info(uri)
    assert info.saved_input_example_info is not None
    pyfunc = mlflow.pyfunc.load_model(uri)
    example = pyfunc.input_example  # read back from the model's own files
    x, _ = data
    # The first rows of the first batch training read (the input does not shuffle).
    assert set(example) == {"x"}
    assert example["x"].dtype == np.float32
    np.testing.assert_array_equal(example["x"], x[: examples.MAX_ROWS])

    predicted = pyfunc.predict(example)
    expected = np.stack(
        [
            p["probabilities"]
            for p in est.predict(lambda: tf.data.Dataset.from_tensor_slices({"x": x[:5]}).batch(5))
        ]
    )
    np.testing.assert_allclose(np.array(predicted["probabilities"]), expected, atol=1e-6)


def test_parsing_receiver_export_has_no_example_and_no_warning(
    tf: Any,
    tracking: MlflowClient,
    feature_columns: list[Any],
    make_config: Any,
    input_fn: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    autolog.autolog(frameworks=["tf_estimator"])
    est = tf.estimator.LinearClassifier(
        feature_columns, model_dir=str(tmp_path / "linear"), config=make_config()
    )
    est.train(input_fn(), steps=3)
    spec = tf.feature_column.make_parse_example_spec(feature_columns)
    receiver = tf.estimator.export.build_parsing_serving_input_receiver_fn(spec)
    with (
        warnings.catch_warnings(record=True) as caught,
        caplog.at_level(logging.DEBUG, logger=examples.__name__),
    ):
        warnings.simplefilter("always")
        est.export_saved_model(str(tmp_path / "export"), receiver)
    assert not [w for w in caught if issubclass(w.category, AutologWarning)]
    assert "no input example: serving input" in caplog.text

    info = mlflow.models.get_model_info(f"models:/{_model_id(tracking)}")
    assert info.saved_input_example_info is None
    assert info.signature is not None  # the serving signature still describes the model


def test_one_shot_generator_is_read_as_often_as_without_autolog(
    tf: Any, enable: Any, store: Any, make_config: Any, tmp_path: Path
) -> None:
    x = np.arange(6 * BATCH * 2, dtype=np.float32).reshape(-1, 2)

    def train(model_dir: str) -> tuple[int, Any]:
        yields = 0

        def rows() -> Iterator[tuple[dict[str, Any], int]]:
            nonlocal yields
            for row in x:
                yields += 1
                yield {"x": row}, int(row.sum() > x.mean() * 2)

        generator = rows()  # one-shot: a second read would find it empty

        def input_fn() -> Any:
            return tf.data.Dataset.from_generator(
                lambda: generator,
                output_signature=(
                    {"x": tf.TensorSpec([2], tf.float32)},
                    tf.TensorSpec([], tf.int32),
                ),
            ).batch(BATCH)

        est = tf.estimator.LinearClassifier(
            [tf.feature_column.numeric_column("x", shape=(2,))],
            model_dir=model_dir,
            config=make_config(),
        )
        est.train(input_fn)
        return yields, est

    plain_yields, plain = train(str(tmp_path / "plain"))
    enable()
    logged_yields, logged = train(str(tmp_path / "logged"))

    assert logged_yields == plain_yields == len(x)
    assert logged.get_variable_value("global_step") == plain.get_variable_value("global_step")
    rows = examples.rows_for(logged)
    assert rows is not None
    np.testing.assert_array_equal(rows["x"], x[: examples.MAX_ROWS])


def test_a_weight_column_the_receiver_does_not_take_is_left_out(
    tf: Any,
    enable: Any,
    store: Any,
    make_config: Any,
    serving_input_fn: Any,
    data: Any,
    tmp_path: Path,
) -> None:
    x, y = data
    weights = np.linspace(0.5, 1.5, len(x)).astype(np.float32)

    def input_fn() -> Any:
        return tf.data.Dataset.from_tensor_slices(({"x": x, "w": weights}, y)).batch(BATCH)

    enable()
    est = tf.estimator.DNNClassifier(
        [3],
        [tf.feature_column.numeric_column("x", shape=(2,))],
        weight_column="w",
        model_dir=str(tmp_path / "dnn"),
        config=make_config(),
    )
    est.train(input_fn, steps=2)
    est.export_saved_model(str(tmp_path / "export"), serving_input_fn)
    (run,) = store.runs.values()
    (model,) = run.models
    assert set(model["input_example"]) == {"x"}
    np.testing.assert_array_equal(model["input_example"]["x"], x[:5])


def test_string_and_sparse_features_are_skipped_without_failing(
    tf: Any, enable: Any, store: Any, make_config: Any, data: Any, tmp_path: Path
) -> None:
    x, y = data
    names = np.array([f"row{i}".encode() for i in range(len(x))])

    def input_fn() -> Any:
        def features(row: Any, name: Any, label: Any) -> Any:
            sparse = tf.sparse.from_dense(tf.cast(row > 0.5, tf.int64))
            return {"x": row, "name": name, "flags": sparse}, label

        ds = tf.data.Dataset.from_tensor_slices((x, names, y)).map(features)
        return ds.batch(BATCH)

    def model_fn(features: Any, labels: Any, mode: Any) -> Any:
        # Every feature reaches the loss: none is left out for not being computed.
        extra = tf.cast(tf.strings.length(features["name"]), tf.float32) * 0.0
        extra += tf.cast(tf.sparse.reduce_sum(features["flags"], axis=1), tf.float32) * 0.0
        w = tf.compat.v1.get_variable("w", [2])
        logits = tf.reduce_sum(features["x"] * w, 1) + extra
        loss = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.cast(labels, tf.float32), logits=logits
            )
        )
        step = tf.compat.v1.train.get_global_step()
        train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, step)
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)

    enable()
    est = tf.estimator.Estimator(model_fn, model_dir=str(tmp_path / "custom"), config=make_config())
    est.train(input_fn, steps=2)
    rows = examples.rows_for(est)
    assert rows is not None and set(rows) == {"x"}
    np.testing.assert_array_equal(rows["x"], x[:5])
    (run,) = store.runs.values()
    assert run.status == "FINISHED"


def test_no_rows_kept_without_log_models(
    tf: Any, enable: Any, store: Any, feature_columns: list[Any], input_fn: Any, tmp_path: Path
) -> None:
    enable(log_models=False)
    est = tf.estimator.LinearClassifier(feature_columns, model_dir=str(tmp_path / "linear"))
    est.train(input_fn(), steps=2)
    assert examples.rows_for(est) is None


def test_rows_kept_with_the_loss_hook_off(
    tf: Any,
    enable: Any,
    store: Any,
    feature_columns: list[Any],
    input_fn: Any,
    data: Any,
    tmp_path: Path,
) -> None:
    enable(log_every_n_steps=0)
    est = tf.estimator.LinearClassifier(feature_columns, model_dir=str(tmp_path / "linear"))
    est.train(input_fn(), steps=3)
    rows = examples.rows_for(est)
    assert rows is not None
    np.testing.assert_array_equal(rows["x"], data[0][:5])


def test_later_steps_fetch_nothing_more(tf: Any, sink: Any, data: Any, tmp_path: Path) -> None:
    """After the first step the hook's methods are the class's: nothing extra per step."""
    x, y = data
    sample = examples.FeatureSample()
    hook = make_loss_hook(sink, 1000, sample=sample)
    fetches: list[Any] = []

    class Recorder(tf.estimator.SessionRunHook):  # type: ignore[misc]
        def after_run(self, run_context: Any, run_values: Any) -> None:
            fetches.append(
                (vars(hook).get("before_run"), vars(hook).get("after_run"), hook._sample_fetch)
            )

    def input_fn() -> Any:
        return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(BATCH).repeat()

    def model_fn(features: Any, labels: Any, mode: Any) -> Any:
        sample.features = features  # what the _call_model_fn patch does under autolog
        w = tf.compat.v1.get_variable("w", [2])
        loss = tf.reduce_mean(tf.square(tf.reduce_sum(features["x"] * w, 1)))
        step = tf.compat.v1.train.get_global_step()
        train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, step)
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)

    est = tf.estimator.Estimator(model_fn, model_dir=str(tmp_path / "custom"))
    est.train(input_fn, steps=4, hooks=[hook, Recorder()])
    np.testing.assert_array_equal(sample.rows["x"], x[:5])
    assert sample.features is None  # the graph is not kept
    # From the first step's end on, no first-step method and no example fetch is left.
    assert fetches == [(None, None, None)] * 4


# Which rows fit which serving signature (no TensorFlow needed) -----------------------------


def _signature(*inputs: tuple[str, str, list[int]]) -> dict[str, Any]:
    return {
        "inputs": [
            {"type": "tensor", "name": n, "tensor-spec": {"dtype": d, "shape": s}}
            for n, d, s in inputs
        ],
        "outputs": [],
    }


ROWS = {"x": np.zeros((5, 2), np.float32), "age": np.arange(5, dtype=np.int64)}


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (_signature(("x", "float32", [-1, 2])), {"x"}),
        (_signature(("x", "float32", [-1, 2]), ("age", "int64", [-1])), {"x", "age"}),
        (_signature(("x", "float32", [5, -1])), {"x"}),
        (_signature(("examples", "object", [-1])), None),  # a parsing receiver
        (_signature(("x", "float64", [-1, 2])), None),
        (_signature(("x", "float32", [-1, 3])), None),
        (_signature(("x", "float32", [-1])), None),
        (None, None),
    ],
)
def test_rows_fit_a_signature_of_the_same_names_dtypes_and_shapes(
    signature: Any, expected: set[str] | None
) -> None:
    example = examples.input_example(ROWS, signature)
    assert (None if example is None else set(example)) == expected


def test_no_rows_no_example() -> None:
    assert examples.input_example(None, _signature(("x", "float32", [-1, 2]))) is None


def test_a_failing_sample_never_breaks_training(
    tf: Any,
    enable: Any,
    store: Any,
    feature_columns: list[Any],
    input_fn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(self: Any, values: Any) -> None:
        raise MemoryError("no room for five rows") from None

    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.setattr(examples.FeatureSample, "record", explode)
    enable()
    est = tf.estimator.LinearClassifier(feature_columns, model_dir=str(tmp_path / "linear"))
    with pytest.warns(AutologWarning, match="tf_estimator.*input example"):
        est.train(input_fn(), steps=4)
    assert est.get_variable_value("global_step") == 4
    (run,) = store.runs.values()
    assert run.status == "FINISHED"
    assert [step for step, _ in run.metric_history("loss")] == [1]  # the loss hook went on
    assert examples.rows_for(est) is None
