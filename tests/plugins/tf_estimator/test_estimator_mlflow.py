"""End to end against a real MLflow store (SQLite in a temp dir): what a user sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

import autolog

pytestmark = pytest.mark.tf215


def _runs(client: MlflowClient) -> list[Any]:
    return client.search_runs(["0"], order_by=["attributes.start_time ASC"])


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def _artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            found |= _artifact_paths(client, run_id, info.path)
        else:
            found.add(info.path)
    return found


def test_train_evaluate_export_in_mlflow(
    tf: Any,
    tracking: MlflowClient,
    feature_columns: list[Any],
    make_config: Any,
    input_fn: Any,
    serving_input_fn: Any,
    data: Any,
    tmp_path: Path,
) -> None:
    autolog.autolog(frameworks=["tf_estimator"], tf_estimator={"log_tensorboard": True})
    est = tf.estimator.DNNClassifier(
        [4],
        feature_columns,
        n_classes=2,
        optimizer="Adam",
        model_dir=str(tmp_path / "dnn"),
        config=make_config(),
    )
    est.train(input_fn(), steps=15)
    result = est.evaluate(input_fn(), steps=2)
    export_dir = est.export_saved_model(str(tmp_path / "export"), serving_input_fn)

    (run,) = _runs(tracking)
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["estimator_class"] == "DNNClassifier"
    assert params["steps"] == "15"
    assert params["hidden_units"] == "[4]"
    assert params["optimizer"] == "Adam"
    assert params["learning_rate"] == "0.001"
    assert params["feature_columns"] == '["x"]'
    assert params["save_summary_steps"] == "5"
    assert [s for s, _ in _history(tracking, run_id, "loss")] == [1, 6, 11]
    assert _history(tracking, run_id, "global_step/sec")
    assert _history(tracking, run_id, "eval_accuracy") == [
        (15, pytest.approx(float(result["accuracy"])))
    ]
    assert _history(tracking, run_id, "eval_auc")[0][0] == 15
    assert run.data.tags["autolog.plugin"] == "tf_estimator"

    version = Path(export_dir.decode()).name
    assert run.data.tags["autolog.tf_estimator.saved_model"] == version
    paths = _artifact_paths(tracking, run_id)
    assert "checkpoint/model.ckpt-15.index" in paths
    assert any(p.startswith("tensorboard/events.out.tfevents.") for p in paths)
    # One copy of the SavedModel: the LoggedModel's, none among the run's artifacts.
    assert not [p for p in paths if p.endswith("saved_model.pb")]

    # The export is the run's LoggedModel, of the tensorflow flavor.
    (output,) = run.outputs.model_outputs
    model = tracking.get_logged_model(output.model_id)
    assert model.source_run_id == run_id
    assert model.name == "model"
    assert str(model.status) == "READY"
    linked = {m.key: m.value for m in model.metrics or []}
    assert linked["eval_accuracy"] == pytest.approx(float(result["accuracy"]))
    assert linked["loss"] == _history(tracking, run_id, "loss")[-1][1]
    info = mlflow.models.get_model_info(f"models:/{model.model_id}")
    assert set(info.flavors) == {"tensorflow", "python_function"}
    assert info.signature.inputs.input_names() == ["x"]

    # Loaded as a user would: the serving function, and pyfunc with named inputs.
    x, _ = data
    features = lambda: tf.data.Dataset.from_tensor_slices({"x": x[:6]}).batch(6)  # noqa: E731
    expected = np.stack([p["probabilities"] for p in est.predict(features)])
    serve = mlflow.tensorflow.load_model(f"models:/{model.model_id}")
    got = serve(x=tf.constant(x[:6]))["probabilities"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model.model_id}")
    np.testing.assert_allclose(
        np.array(pyfunc.predict({"x": x[:6]})["probabilities"]), expected, atol=1e-6
    )

    local = Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "download"))
    )
    checkpoint = tf.train.latest_checkpoint(str(local / "checkpoint"))
    name = "dnn/logits/kernel"
    np.testing.assert_allclose(
        tf.train.load_variable(checkpoint, name), est.get_variable_value(name)
    )


def test_failed_training_is_a_failed_run(
    tf: Any, tracking: MlflowClient, custom_model_fn: Any, input_fn: Any, tmp_path: Path
) -> None:
    autolog.autolog(frameworks=["tf_estimator"])
    est = tf.estimator.Estimator(
        custom_model_fn, model_dir=str(tmp_path / "m"), params={"learning_rate": 0.1, "fail": 1}
    )
    with pytest.raises(RuntimeError, match="on purpose"):
        est.train(input_fn(), steps=2)
    (run,) = _runs(tracking)
    assert run.info.status == "FAILED"
    assert run.data.params["learning_rate"] == "0.1"


def test_train_and_evaluate_is_one_mlflow_run(
    tf: Any,
    tracking: MlflowClient,
    custom_model_fn: Any,
    make_config: Any,
    input_fn: Any,
    tmp_path: Path,
) -> None:
    autolog.autolog(frameworks=["tf_estimator"], log_every_n_steps=2)
    est = tf.estimator.Estimator(
        custom_model_fn,
        model_dir=str(tmp_path / "m"),
        params={"learning_rate": 0.5},
        config=make_config(save_checkpoints_steps=4),
    )
    tf.estimator.train_and_evaluate(
        est,
        tf.estimator.TrainSpec(input_fn(), max_steps=8),
        tf.estimator.EvalSpec(input_fn(), steps=1, throttle_secs=0),
    )
    (run,) = _runs(tracking)
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.params["max_steps"] == "8"
    assert [s for s, _ in _history(tracking, run_id, "loss")] == [1, 3, 5, 7]
    assert [s for s, _ in _history(tracking, run_id, "eval_custom_accuracy")] == [4, 8]


def test_logs_into_the_users_run(
    tf: Any, tracking: MlflowClient, custom_model_fn: Any, input_fn: Any, tmp_path: Path
) -> None:
    autolog.autolog(frameworks=["tf_estimator"])
    est = tf.estimator.Estimator(
        custom_model_fn, model_dir=str(tmp_path / "m"), params={"learning_rate": 0.5}
    )
    with mlflow.start_run() as active:
        est.train(input_fn(), steps=3)
        est.evaluate(input_fn(), steps=1)
        assert mlflow.active_run() is not None
    (run,) = _runs(tracking)
    assert run.info.run_id == active.info.run_id
    assert _history(tracking, run.info.run_id, "eval_custom_accuracy")[0][0] == 3


def test_secrets_inside_listed_params_never_reach_the_store(
    tf: Any, tracking: MlflowClient, custom_model_fn: Any, input_fn: Any, tmp_path: Path
) -> None:
    autolog.autolog(frameworks=["tf_estimator"])
    params = {
        "learning_rate": 0.1,
        "layers": [3, 2],
        "names": ["a", "b"],
        "dbs": [{"host": "h", "password": "hunter2"}],
        "conn": ({"api_key": "sk-live-123"},),
        "nested": [[{"auth_token": "tok-456", "port": 5432}]],
    }
    est = tf.estimator.Estimator(custom_model_fn, model_dir=str(tmp_path / "m"), params=params)
    est.train(input_fn(), steps=2)
    (run,) = _runs(tracking)
    stored = run.data.params
    for secret in ("hunter2", "sk-live-123", "tok-456"):
        assert not [key for key, value in stored.items() if secret in value]
    assert stored["dbs"] == "[{'host': 'h', 'password': '***'}]"
    assert stored["conn"] == "[{'api_key': '***'}]"
    assert stored["nested"] == "[[{'auth_token': '***', 'port': 5432}]]"
    # Lists without mappings are JSON, as before.
    assert stored["layers"] == "[3, 2]"
    assert stored["names"] == '["a", "b"]'
    assert stored["learning_rate"] == "0.1"


def _fail_at(tf: Any, at: int, error: BaseException) -> Any:
    """A user hook whose ``after_run`` raises ``error`` on the ``at``-th training step."""

    class FailAt(tf.estimator.SessionRunHook):
        runs = 0

        def after_run(self, run_context: Any, run_values: Any) -> None:
            self.runs += 1
            if self.runs == at:
                raise error

    return FailAt()


def _loss_steps_on_disk(tf: Any, model_dir: Path) -> list[int]:
    return sorted(
        event.step
        for path in model_dir.glob("events.out.tfevents.*")
        for event in tf.compat.v1.train.summary_iterator(str(path))
        for value in event.summary.value
        if value.tag == "loss"
    )


@pytest.mark.parametrize(
    ("error", "status"),
    [(ValueError("diverged"), "FAILED"), (KeyboardInterrupt(), "KILLED")],
    ids=["error", "interrupt"],
)
def test_summaries_written_before_a_failure_are_in_the_run(
    tf: Any,
    tracking: MlflowClient,
    feature_columns: list[Any],
    input_fn: Any,
    tmp_path: Path,
    error: BaseException,
    status: str,
) -> None:
    autolog.autolog(frameworks=["tf_estimator"], tf_estimator={"log_every_n_steps": 0})
    model_dir = tmp_path / "m"
    est = tf.estimator.LinearClassifier(
        feature_columns,
        model_dir=str(model_dir),
        config=tf.estimator.RunConfig(save_summary_steps=1, tf_random_seed=7),
    )
    with pytest.raises(type(error)) as raised:
        est.train(input_fn(), steps=20, hooks=[_fail_at(tf, 8, error)])
    assert raised.value is error
    (run,) = _runs(tracking)
    assert run.info.status == status
    steps = [s for s, _ in _history(tracking, run.info.run_id, "loss")]
    # Every loss summary of the 8 steps done, the last one included.
    assert steps == _loss_steps_on_disk(tf, model_dir)
    assert steps[0] == 1
    assert steps[-1] == 8


def test_evaluate_after_export_links_to_the_exported_model(
    tf: Any,
    tracking: MlflowClient,
    custom_model_fn: Any,
    input_fn: Any,
    serving_input_fn: Any,
    tmp_path: Path,
) -> None:
    autolog.autolog(frameworks=["tf_estimator"])
    est = tf.estimator.Estimator(
        custom_model_fn, model_dir=str(tmp_path / "m"), params={"learning_rate": 0.5}
    )
    est.train(input_fn(), steps=4)
    est.export_saved_model(str(tmp_path / "export"), serving_input_fn)
    result = est.evaluate(input_fn(), steps=1)
    (run,) = _runs(tracking)
    (output,) = run.outputs.model_outputs
    linked = {m.key: m.value for m in tracking.get_logged_model(output.model_id).metrics or []}
    assert linked["eval_custom_accuracy"] == pytest.approx(float(result["custom_accuracy"]))
    assert "loss" in linked


def test_a_bad_export_is_an_error_naming_it(tracking: MlflowClient, tmp_path: Path) -> None:
    from autolog import models

    class Logger:
        run_id = tracking.create_run("0").info.run_id

        def log_temp_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
            raise AssertionError("nothing is handed to the run's artifacts")

    empty = tmp_path / "1700000000"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=f"no saved_model.pb in .*{empty.name}"):
        models.package_model(
            Logger(),
            flavor="tensorflow",
            loader=lambda: str(empty),
            client=tracking,
            tf_signature_def_key="serving_default",
        )
    (failed,) = tracking.search_logged_models(experiment_ids=["0"])
    assert str(failed.status) == "FAILED"
    with pytest.raises(TypeError, match="'custom_objects'"):
        models.package_model(
            Logger(),
            flavor="tensorflow",
            loader=lambda: str(empty),
            tf_signature_def_key="serving_default",
            custom_objects={},
        )
