"""Estimator.evaluate and export_saved_model: into the train run, or a run of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

import numpy as np

pytestmark = pytest.mark.tf215


def _features(tf: Any, x: Any) -> Any:
    """A predict input_fn: one finite batch (a bare tensor would repeat forever)."""
    return lambda: tf.data.Dataset.from_tensor_slices({"x": x}).batch(len(x))


@pytest.fixture
def trained_linear(
    tf: Any, feature_columns: list[Any], make_config: Any, input_fn: Any, tmp_path: Path
) -> Any:
    """A LinearClassifier trained for 10 steps before autolog is enabled."""
    est = tf.estimator.LinearClassifier(
        feature_columns, model_dir=str(tmp_path / "linear"), config=make_config()
    )
    est.train(input_fn(), steps=10)
    return est


@pytest.fixture
def custom(tf: Any, custom_model_fn: Any, make_config: Any, tmp_path: Path) -> Any:
    return tf.estimator.Estimator(
        custom_model_fn,
        model_dir=str(tmp_path / "custom"),
        params={"learning_rate": 0.5},
        config=make_config(),
    )


def test_evaluate_after_train_logs_into_the_train_run(
    enable: Any, store: Any, custom: Any, input_fn: Any
) -> None:
    enable()
    custom.train(input_fn(), steps=8)
    result = custom.evaluate(input_fn(), steps=2)
    (run,) = store.runs.values()
    assert run.status == "FINISHED"
    assert run.metric_history("eval_custom_accuracy") == [
        (8, pytest.approx(float(result["custom_accuracy"])))
    ]
    assert run.metric_history("eval_loss") == [(8, pytest.approx(float(result["loss"])))]
    assert "eval_global_step" not in run.metrics


def test_evaluate_only_is_a_run_of_its_own(
    tf: Any, enable: Any, store: Any, trained_linear: Any, feature_columns: list[Any], input_fn: Any
) -> None:
    enable()
    # A fresh estimator over the trained model_dir: nothing to join.
    est = tf.estimator.LinearClassifier(feature_columns, model_dir=trained_linear.model_dir)
    result = est.evaluate(input_fn(repeat=False))
    (run,) = store.runs.values()
    assert run.status == "FINISHED"
    assert run.params["estimator_class"] == "LinearClassifier"
    assert run.params["model_dir"] == trained_linear.model_dir
    for key in ("accuracy", "auc", "loss", "average_loss", "precision", "recall"):
        assert run.metric_history(f"eval_{key}") == [(10, pytest.approx(float(result[key])))]
    assert run.metric_history("eval_label/mean")
    assert not run.artifacts


def test_named_evaluations_keep_their_name(
    enable: Any, store: Any, trained_linear: Any, input_fn: Any
) -> None:
    enable()
    trained_linear.evaluate(input_fn(), steps=1, name="holdout")
    run = store.last_run()
    assert run.metric_history("eval_holdout_accuracy")
    assert not any(key.startswith("eval_accuracy") for key in run.metrics)


def test_export_after_train_reloads_with_the_same_predictions(
    tf: Any,
    enable: Any,
    store: Any,
    custom: Any,
    input_fn: Any,
    data: Any,
    serving_input_fn: Any,
    artifact_dir: Any,
    tmp_path: Path,
) -> None:
    enable()
    custom.train(input_fn(), steps=10)
    export_dir = custom.export_saved_model(str(tmp_path / "export"), serving_input_fn)
    (run,) = store.runs.values()
    version = Path(export_dir.decode()).name
    assert run.tags["autolog.tf_estimator.saved_model"] == version
    # The run's model is the export, handed to the core as a tensorflow-flavor model
    # (the core packages it; tests/plugins/tf_estimator/test_estimator_mlflow.py loads it).
    (model,) = run.models
    assert model["flavor"] == "tensorflow"
    assert model["artifact_path"] == "model"
    assert model["tf_signature_def_key"] == "serving_default"
    assert model["tf_meta_graph_tags"] == ["serve"]
    assert model["requirements"] == ("tensorflow", "tensorflow-estimator")
    x_spec = {"type": "tensor", "name": "x", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}
    assert model["signature"]["inputs"] == [x_spec]
    assert [o["name"] for o in model["signature"]["outputs"]] == ["probability"]
    # No second copy as plain run artifacts.
    assert not [key for key in run.artifacts if not key.startswith("checkpoint/")]

    x, _ = data
    expected = [p["probability"] for p in custom.predict(_features(tf, x[:5]))]
    loaded = tf.saved_model.load(model["model"])
    got = loaded.signatures["serving_default"](x=tf.constant(x[:5]))["probability"].numpy()
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-6)


def test_export_canned_estimator_alone_is_a_run_of_its_own(
    tf: Any,
    enable: Any,
    store: Any,
    trained_linear: Any,
    data: Any,
    serving_input_fn: Any,
    artifact_dir: Any,
    tmp_path: Path,
) -> None:
    enable()
    export_dir = trained_linear.export_saved_model(str(tmp_path / "export"), serving_input_fn)
    (run,) = store.runs.values()
    assert run.params["estimator_class"] == "LinearClassifier"
    (model,) = run.models
    assert _is_a_snapshot_of(model["model"], export_dir)
    # A raw serving input gives canned estimators no serving_default: predict is served.
    assert model["tf_signature_def_key"] == "predict"
    x, _ = data
    expected = [p["probabilities"] for p in trained_linear.predict(_features(tf, x[:5]))]
    loaded = tf.saved_model.load(model["model"])
    got = loaded.signatures["predict"](x=tf.constant(x[:5]))["probabilities"].numpy()
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-6)


def test_export_not_logged_without_log_models(
    enable: Any, store: Any, trained_linear: Any, serving_input_fn: Any, tmp_path: Path
) -> None:
    enable(log_models=False)
    trained_linear.export_saved_model(str(tmp_path / "export"), serving_input_fn)
    run = store.last_run()
    assert not run.artifacts
    assert not run.models
    assert "autolog.tf_estimator.saved_model" not in run.tags


def test_experimental_export_all_saved_models(
    tf: Any,
    enable: Any,
    store: Any,
    custom: Any,
    input_fn: Any,
    serving_input_fn: Any,
    tmp_path: Path,
) -> None:
    enable()
    custom.train(input_fn(), steps=3)
    export_dir = custom.experimental_export_all_saved_models(
        str(tmp_path / "export"), {tf.estimator.ModeKeys.PREDICT: serving_input_fn}
    )
    (run,) = store.runs.values()
    (model,) = run.models
    assert _is_a_snapshot_of(model["model"], export_dir)
    assert run.tags["autolog.tf_estimator.saved_model"] == Path(export_dir.decode()).name


def _is_a_snapshot_of(logged: str, export_dir: bytes) -> bool:
    """The model handed to the core is a snapshot of the export (same version, same files)."""
    source = Path(export_dir.decode())
    copy = Path(logged)
    files = lambda root: sorted(p.relative_to(root) for p in root.rglob("*"))  # noqa: E731
    return copy != source and copy.name == source.name and files(copy) == files(source)
