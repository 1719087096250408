"""tf.estimator.train_and_evaluate: one run holding training, every evaluation and exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

import numpy as np

pytestmark = pytest.mark.tf215


def _steps(run: Any, key: str) -> list[int]:
    return [step for step, _ in run.metric_history(key)]


def test_canned_train_and_evaluate_is_one_run(
    tf: Any,
    enable: Any,
    store: Any,
    feature_columns: list[Any],
    make_config: Any,
    input_fn: Any,
    serving_input_fn: Any,
    artifact_dir: Any,
    data: Any,
    tmp_path: Path,
) -> None:
    enable()
    est = tf.estimator.DNNClassifier(
        [3],
        feature_columns,
        model_dir=str(tmp_path / "dnn"),
        config=make_config(save_checkpoints_steps=10),
    )
    exporter = tf.estimator.LatestExporter("latest", serving_input_fn)
    train_spec = tf.estimator.TrainSpec(input_fn(), max_steps=20)
    eval_spec = tf.estimator.EvalSpec(
        input_fn(), steps=2, exporters=[exporter], throttle_secs=0, start_delay_secs=0
    )
    metrics, _exports = tf.estimator.train_and_evaluate(est, train_spec, eval_spec)

    (run,) = store.runs.values()
    assert run.status == "FINISHED"
    params = run.params
    assert params["estimator_class"] == "DNNClassifier"
    assert params["max_steps"] == "20"
    assert params["eval_steps"] == "2"
    assert params["eval_throttle_secs"] == "0"
    assert params["exporters"] == '["latest"]'
    assert params["hidden_units"] == "[3]"
    assert _steps(run, "loss") == [1, 6, 11, 16]
    # An evaluation after each checkpoint (steps 10 and 20), at the checkpoint's step.
    assert _steps(run, "eval_accuracy") == [10, 20]
    assert run.last_metric("eval_loss") == pytest.approx(float(metrics["loss"]))
    # The exporter ran after each evaluation; every export is a model of the run.
    versions = [Path(model["model"]).name for model in run.models]
    assert len(versions) == 2 and {m["flavor"] for m in run.models} == {"tensorflow"}
    assert run.tags["autolog.tf_estimator.saved_model"] == max(versions)
    # Each export's input example: the first rows the training step read.
    x = data[0]
    for model in run.models:
        np.testing.assert_array_equal(model["input_example"]["x"], x[:5])
    # The second evaluation came after the first export: its values measure that model.
    assert run.model_metrics["eval_loss"] == pytest.approx(float(metrics["loss"]))
    assert run.tags["autolog.tf_estimator.checkpoint"] == "checkpoint/model.ckpt-20"
    assert (artifact_dir(run) / "checkpoint" / "model.ckpt-20.index").exists()


@pytest.mark.parametrize(
    "entry",
    [
        "tensorflow_estimator.python.estimator.training",
        "tensorflow_estimator.python.estimator.api._v1.estimator",
        "tensorflow_estimator._api.v2.estimator",
        "tensorflow_estimator.python.estimator.estimator_lib",
    ],
)
def test_every_public_name_logs_once(
    tf: Any,
    enable: Any,
    store: Any,
    custom_model_fn: Any,
    make_config: Any,
    input_fn: Any,
    artifact_dir: Any,
    tmp_path: Path,
    entry: str,
) -> None:
    import importlib

    enable(log_tensorboard=True)
    est = tf.estimator.Estimator(
        custom_model_fn,
        model_dir=str(tmp_path / "custom"),
        params={"learning_rate": 0.5},
        config=make_config(save_checkpoints_steps=6),
    )
    train_and_evaluate = importlib.import_module(entry).train_and_evaluate
    train_and_evaluate(
        est,
        tf.estimator.TrainSpec(input_fn(), max_steps=6),
        tf.estimator.EvalSpec(input_fn(), steps=1, throttle_secs=0, name="val"),
    )
    (run,) = store.runs.values()
    assert run.params["learning_rate"] == "0.5"
    assert run.params["eval_name"] == "val"
    assert _steps(run, "eval_val_custom_accuracy") == [6]
    assert _steps(run, "mean_probability")[0] == 1  # later summary steps may slip (TF race)
    # Event files of training and of the named evaluation, laid out as in model_dir.
    tensorboard = artifact_dir(run) / "tensorboard"
    assert len(list(tensorboard.glob("events.out.tfevents.*"))) == 1
    assert len(list((tensorboard / "eval_val").glob("events.out.tfevents.*"))) == 1


def test_evaluate_after_train_and_evaluate(
    tf: Any, enable: Any, store: Any, custom_model_fn: Any, input_fn: Any, tmp_path: Path
) -> None:
    enable()
    est = tf.estimator.Estimator(
        custom_model_fn, model_dir=str(tmp_path / "m"), params={"learning_rate": 0.5}
    )
    tf.estimator.train_and_evaluate(
        est,
        tf.estimator.TrainSpec(input_fn(), max_steps=3),
        tf.estimator.EvalSpec(input_fn(), steps=1, throttle_secs=0),
    )
    est.evaluate(input_fn(), steps=1, name="later")
    runs = list(store.runs.values())
    assert _steps(runs[0], "eval_custom_accuracy") == [3]
    # Whichever run it lands in, the later evaluation is logged exactly once.
    assert sum(len(r.metric_history("eval_later_custom_accuracy")) for r in runs) == 1
