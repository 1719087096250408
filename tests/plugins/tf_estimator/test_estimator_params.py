"""Params read from estimators: canned hyperparameters, custom params, RunConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

from autolog_tf_estimator.params import estimator_params

pytestmark = pytest.mark.tf215


@pytest.fixture
def two_columns(tf: Any) -> list[Any]:
    return [
        tf.feature_column.numeric_column("x", shape=(2,)),
        tf.feature_column.numeric_column("y"),
    ]


def test_linear_classifier(tf: Any, two_columns: list[Any], tmp_path: Path) -> None:
    est = tf.estimator.LinearClassifier(two_columns, n_classes=3, model_dir=str(tmp_path))
    params = estimator_params(est)
    assert params["estimator_class"] == "LinearClassifier"
    assert params["model_dir"] == str(tmp_path)
    assert params["n_classes"] == 3
    assert params["head"] == "MultiClassHead"
    assert params["feature_columns"] == '["x", "y"]'
    assert params["optimizer"] == "Ftrl"
    assert params["learning_rate"] == pytest.approx(0.2)  # linear.py's own default
    assert params["sparse_combiner"] == "sum"


def test_dnn_classifier_with_optimizer_instance(tf: Any, two_columns: list[Any]) -> None:
    est = tf.estimator.DNNClassifier(
        hidden_units=[8, 4],
        feature_columns=two_columns,
        dropout=0.25,
        label_vocabulary=["no", "yes"],
        optimizer=tf.keras.optimizers.legacy.Adam(learning_rate=0.01),
    )
    params = estimator_params(est)
    assert params["estimator_class"] == "DNNClassifier"
    assert params["hidden_units"] == "[8, 4]"
    assert params["dropout"] == 0.25
    assert params["n_classes"] == 2
    assert params["label_vocabulary"] == '["no", "yes"]'
    assert params["optimizer"] == "Adam"
    assert params["learning_rate"] == pytest.approx(0.01)
    assert params["activation_fn"] == "relu"
    assert params["batch_norm"] is False


def test_dnn_regressor_string_optimizer_gets_the_rate_it_trains_with(
    tf: Any, two_columns: list[Any]
) -> None:
    est = tf.estimator.DNNRegressor([3], two_columns, label_dimension=2, optimizer="SGD")
    params = estimator_params(est)
    assert params["label_dimension"] == 2
    assert "n_classes" not in params
    assert params["optimizer"] == "SGD"
    # The V2 DNN passes no rate, so the Keras class default applies.
    assert params["learning_rate"] == pytest.approx(0.01)


def test_dnn_linear_combined(tf: Any, two_columns: list[Any]) -> None:
    est = tf.estimator.DNNLinearCombinedClassifier(
        linear_feature_columns=two_columns,
        dnn_feature_columns=two_columns[:1],
        dnn_hidden_units=[5],
        dnn_dropout=0.2,
    )
    params = estimator_params(est)
    assert params["estimator_class"] == "DNNLinearCombinedClassifier"
    assert params["dnn_hidden_units"] == "[5]"
    assert params["dnn_dropout"] == 0.2
    assert params["dnn_feature_columns"] == '["x"]'
    assert params["linear_feature_columns"] == '["x", "y"]'
    assert params["dnn_optimizer"] == "Adagrad"
    assert params["dnn_learning_rate"] == pytest.approx(0.001)
    assert params["linear_optimizer"] == "Ftrl"
    assert params["linear_learning_rate"] == pytest.approx(0.005)


def test_optimizer_factory_is_named_not_called(tf: Any, two_columns: list[Any]) -> None:
    calls = []

    def make_optimizer() -> Any:
        calls.append(1)
        return tf.keras.optimizers.legacy.Adagrad(0.05)

    est = tf.estimator.DNNClassifier([2], two_columns, optimizer=make_optimizer)
    params = estimator_params(est)
    assert params["optimizer"] == "make_optimizer"
    assert "learning_rate" not in params
    assert calls == []


def test_learning_rate_schedule(tf: Any, two_columns: list[Any]) -> None:
    schedule = tf.keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.9)
    est = tf.estimator.LinearRegressor(
        two_columns, optimizer=tf.keras.optimizers.legacy.SGD(learning_rate=schedule)
    )
    params = estimator_params(est)
    assert params["optimizer"] == "SGD"
    assert params["learning_rate"] == "ExponentialDecay"


def test_tf1_canned_estimator(tf: Any, two_columns: list[Any]) -> None:
    est = tf.compat.v1.estimator.DNNClassifier([4], two_columns)
    params = estimator_params(est)
    assert params["estimator_class"] == "DNNClassifier"
    assert params["optimizer"] == "Adagrad"
    assert params["learning_rate"] == pytest.approx(0.05)  # dnn.py's TF1 default


def test_custom_model_fn_params_are_flattened_and_never_clash(
    tf: Any, custom_model_fn: Any, make_config: Any
) -> None:
    secret_closure_value = "must not be logged"

    def model_fn(features: Any, labels: Any, mode: Any, params: Any) -> Any:
        _ = secret_closure_value
        return custom_model_fn(features, labels, mode, params)

    est = tf.estimator.Estimator(
        model_fn,
        params={"learning_rate": 0.1, "layers": [3, 2], "adam": {"beta_1": 0.9}, "steps": 5},
        config=make_config(save_checkpoints_steps=10, keep_checkpoint_max=2),
    )
    params = estimator_params(est)
    assert params["estimator_class"] == "Estimator"
    assert params["learning_rate"] == 0.1
    assert params["layers"] == "[3, 2]"
    assert params["adam.beta_1"] == 0.9
    assert params["params.steps"] == 5  # "steps" is train()'s own argument
    assert "steps" not in params
    assert "secret_closure_value" not in params
    assert params["save_checkpoints_steps"] == 10
    assert params["save_checkpoints_secs"] is None
    assert params["keep_checkpoint_max"] == 2
    assert params["save_summary_steps"] == 5
    assert params["tf_random_seed"] == 7
    assert params["log_step_count_steps"] == 5


def test_user_subclass_keeps_its_name_and_canned_params(tf: Any, two_columns: list[Any]) -> None:
    class MyClassifier(tf.estimator.LinearClassifier):  # type: ignore[misc,name-defined]
        pass

    params = estimator_params(MyClassifier(two_columns))
    assert params["estimator_class"] == "MyClassifier"
    assert params["optimizer"] == "Ftrl"


def test_distribution_strategy_is_named(tf: Any, two_columns: list[Any]) -> None:
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    est = tf.estimator.LinearClassifier(
        two_columns, config=tf.estimator.RunConfig(train_distribute=strategy)
    )
    assert estimator_params(est)["train_distribute"] == "OneDeviceStrategy"
