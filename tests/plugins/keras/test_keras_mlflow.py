"""End to end: autolog.autolog(frameworks=["keras"]) into a real SQLite MLflow store.

Asserts what a user would look at in MLflow: params, metric histories with their steps,
tags, artifacts, and models that load back and predict what the in-memory model predicts.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pytest

import autolog
from autolog_keras.compat import flavor_of
from tests.plugins.keras.conftest import predictions_at_epoch_end


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
    import mlflow.artifacts
    import mlflow.data
    import mlflow.models

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
        "optimizer_class": "Adam",
        "optimizer_name": model.optimizer.name,
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

    # One copy of the model: an MLflow 3 LoggedModel of the run, not run artifacts.
    assert _artifacts(client, run_id) == {"model_summary.txt"}
    (logged,) = mlflow.search_logged_models(output_format="list")
    assert logged.source_run_id == run_id and logged.name == "model"
    assert str(logged.status) == "READY"
    assert [o.model_id for o in run.outputs.model_outputs] == [logged.model_id]
    assert logged.params["epochs"] == "3"
    # The final value of each metric is linked to the model (its page shows them).
    linked = {m.key: (m.step, m.value) for m in logged.metrics}
    assert linked["loss"] == (2, pytest.approx(history.history["loss"][-1]))
    assert linked["val_accuracy"] == (2, pytest.approx(history.history["val_accuracy"][-1]))
    assert linked["batch_loss"][0] == 8
    # ...without a second copy in the run's history.
    assert [s for s, _ in _history(client, run_id, "loss")] == [0, 1, 2]

    # The MLflow model loads with the Keras flavor and as a pyfunc.
    expected_predictions = model.predict(x, verbose=0)
    uri = f"models:/{logged.model_id}"
    flavor_name = flavor_of(model).mlflow_flavor
    flavored = getattr(mlflow, flavor_name).load_model(uri)
    np.testing.assert_allclose(flavored.predict(x, verbose=0), expected_predictions, rtol=1e-5)
    pyfunc = mlflow.pyfunc.load_model(uri)
    np.testing.assert_allclose(
        np.asarray(pyfunc.predict(x)), expected_predictions, rtol=1e-5, atol=1e-6
    )
    assert pyfunc.metadata.run_id == run_id
    assert pyfunc.metadata.model_id == logged.model_id
    assert flavor_name in pyfunc.metadata.flavors
    # A signature from the model, an input example from five rows fit saw.
    info = mlflow.models.get_model_info(uri)
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 8]
    example = mlflow.models.Model.load(uri).load_input_example()
    np.testing.assert_array_equal(example, x[:5])
    local = mlflow.artifacts.download_artifacts(logged.artifact_location, dst_path=str(tmp_path))
    if flavor_name == "keras":
        # Packaged from the snapshot, not saved a second time: the file loads with Keras.
        reloaded = keras.models.load_model(os.path.join(local, "data", "model.keras"))
        np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected_predictions, rtol=1e-5)
    with open(os.path.join(local, "requirements.txt"), encoding="utf-8") as handle:
        pins = handle.read()
    assert "mlflow" in pins and ("keras==" in pins or "tensorflow" in pins)

    # Training and validation data (Keras's validation_split: the last quarter).
    inputs = {_context(i): i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "validation"}
    assert inputs["train"].digest == mlflow.data.from_numpy(x[:48], targets=y[:48]).digest
    assert inputs["validation"].digest == mlflow.data.from_numpy(x[48:], targets=y[48:]).digest
    assert json.loads(inputs["train"].profile)["features_shape"] == [48, 8]
    assert "tensor-spec" in inputs["train"].schema


def _context(dataset_input: Any) -> str:
    (tag,) = [t for t in dataset_input.tags if t.key == "mlflow.data.context"]
    return str(tag.value)


def test_evaluate_links_its_metrics_and_data_to_the_fit_model(
    mlflow_store: Any, make_model: Any, data: Any
) -> None:
    import mlflow

    autolog.autolog(frameworks=["keras"], log_models=True)
    x, y = data
    model = make_model()
    model.fit(x[:48], y[:48], validation_data=(x[48:], y[48:]), epochs=2, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    run = _only_run(mlflow_store)
    (logged,) = mlflow.search_logged_models(output_format="list")
    metrics = mlflow.get_logged_model(logged.model_id).metrics
    linked = {m.key: m.value for m in metrics}
    assert linked["eval_loss"] == pytest.approx(loss)
    # Measured on the eval dataset: the model page shows which data.
    (eval_loss,) = [m for m in metrics if m.key == "eval_loss"]
    assert eval_loss.dataset_digest == mlflow.data.from_numpy(x, targets=y).digest
    assert eval_loss.dataset_name
    assert linked["eval_accuracy"] == pytest.approx(accuracy)
    assert "loss" in linked and "val_loss" in linked
    assert run.data.metrics["eval_loss"] == pytest.approx(loss)
    assert len(mlflow_store.get_metric_history(run.info.run_id, "eval_loss")) == 1
    digests = {_context(i): i.dataset.digest for i in run.inputs.dataset_inputs}
    assert digests == {
        "train": mlflow.data.from_numpy(x[:48], targets=y[:48]).digest,
        "validation": mlflow.data.from_numpy(x[48:], targets=y[48:]).digest,
        "eval": mlflow.data.from_numpy(x, targets=y).digest,
    }


def test_a_subclassed_model_gets_a_signature_from_its_data(
    mlflow_store: Any, make_model: Any, data: Any
) -> None:
    import mlflow

    autolog.autolog(frameworks=["keras"], log_models=True)
    x, y = data
    model = make_model("subclassed")
    model.fit(x, y, epochs=1, verbose=0)
    (logged,) = mlflow.search_logged_models(output_format="list")
    info = mlflow.models.get_model_info(f"models:/{logged.model_id}")
    (spec,) = info.signature.inputs.to_dict()
    assert spec["tensor-spec"]["dtype"] == "float32"
    assert list(spec["tensor-spec"]["shape"]) == [-1, 8]
    assert info.signature.outputs is None  # a subclassed model declares none
    # (Loading it needs its class registered with Keras: the test's TinyNet is not.)


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


@pytest.mark.parametrize("switch", ["flavor", "mlflow.autolog"])
def test_next_to_mlflows_own_autolog_one_run_and_one_line(
    switch: str,
    mlflow_store: Any,
    make_model: Any,
    data: Any,
    keras3: bool,
    capfd: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MLflow's own Keras autologging on as well: it logs, autolog steps aside and says so.

    Whatever MLflow prints by itself (tf.keras 2.15: a version notice, checkpoint notes) is
    seen first with MLflow's autologging alone; autolog adds its one line and nothing else.
    """
    import warnings

    import mlflow
    from mlflow.utils.autologging_utils import AUTOLOGGING_INTEGRATIONS

    from autolog import mlflow_backend

    monkeypatch.setattr(mlflow_backend, "_stepped_aside", set())
    for name in ("keras", "tensorflow"):
        # An earlier flavor-level call (even disable=True) keeps mlflow.autolog() away.
        monkeypatch.delitem(AUTOLOGGING_INTEGRATIONS, name, raising=False)
    flavor = "keras" if keras3 else "tensorflow"
    options: dict[str, Any] = {"log_models": False, "log_datasets": False}
    if switch == "flavor":
        turn = getattr(mlflow, flavor).autolog
    else:
        turn = mlflow.autolog
        if keras3:
            # MLflow's tensorflow autologging adds a TensorBoard callback to Keras 3 fits,
            # which fails here (no tensorboard package): left out, as a user would.
            options["exclude_flavors"] = ["tensorflow"]
    turn(**options)
    x, y = data
    try:
        on = mlflow_backend.mlflow_autologging(("keras", "tensorflow"))
        with warnings.catch_warnings(record=True) as alone_warnings:
            warnings.simplefilter("always")
            make_model().fit(x, y, epochs=1, verbose=0)
        alone = _lines(capfd.readouterr().err)
        autolog.autolog(frameworks=["keras"], log_models=False)
        model = make_model()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, epochs=2, verbose=0)
            model.fit(x, y, epochs=1, verbose=0)
        both = _lines(capfd.readouterr().err)
    finally:
        turn(disable=True)
    assert flavor in on
    _, first, second = _runs(mlflow_store)
    for run in (first, second):
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.autologging"] == flavor  # MLflow's, not autolog's
        assert "autolog.plugin" not in run.data.tags
    # MLflow's names and values, with nothing of autolog's in between.
    assert first.data.params["epochs"] == "2"
    assert "optimizer_class" not in first.data.params
    assert [s for s, _ in _history(mlflow_store, first.info.run_id, "loss")] == [0, 1]
    calls = " and ".join(f"mlflow.{name}.autolog()" for name in on)
    verb = "is" if len(on) == 1 else "are"
    ours = [line for line in both if line.startswith("autolog: ")]
    assert len(ours) == 1, both
    assert ours[0].startswith(
        f"autolog: MLflow's own autologging logs Keras here ({calls} {verb} on)"
    )
    assert set(both) - set(ours) <= set(alone), both
    assert not any("Changing param values" in line for line in both)
    assert {str(w.message) for w in caught} <= {str(w.message) for w in alone_warnings}


def _lines(err: str) -> list[str]:
    """stderr lines without MLflow's timestamps and with run ids made alike."""
    import re

    lines = []
    for line in err.splitlines():
        line = re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", line)
        lines.append(re.sub(r"[0-9a-f]{32}", "<run>", line))
    return [line for line in lines if line.strip()]


def test_snapshots_handed_over_are_in_the_store_and_their_folders_gone(
    mlflow_store: Any, make_model: Any, data: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    snapshots = tmp_path / "temp"
    snapshots.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(snapshots))
    autolog.autolog(frameworks=["keras"], log_models=True, keras={"checkpoint": "epoch"})
    x, y = data
    make_model().fit(x, y, epochs=2, verbose=0)
    run = _only_run(mlflow_store)
    assert run.info.status == "FINISHED"
    assert {"checkpoints/epoch_0/checkpoint.keras", "checkpoints/epoch_1/checkpoint.keras"} <= (
        _artifacts(mlflow_store, run.info.run_id)
    )
    (logged,) = mlflow_store.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert logged.source_run_id == run.info.run_id
    # The checkpoints were deleted once uploaded, the model's snapshot once packaged: the
    # run's end waits for both, and the plugin keeps no record of either.
    assert [p.name for p in snapshots.iterdir() if p.name.startswith("autolog-keras-")] == []


# Checkpoints: read back by MLflow's own readers ------------------------------------------


def _fit_with_checkpoints(keras: Any, make_model: Any, data: Any, **options: Any) -> Any:
    autolog.autolog(frameworks=["keras"], log_models=False, keras=options)
    x, y = data
    recorder = predictions_at_epoch_end(keras, x)
    history = make_model().fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[recorder])
    return recorder.predictions, history


def test_the_checkpoint_tag_is_mlflows() -> None:
    from mlflow.utils.mlflow_tags import LATEST_CHECKPOINT_ARTIFACT_TAG_KEY

    from autolog_keras.checkpoints import LATEST_CHECKPOINT_TAG

    assert LATEST_CHECKPOINT_TAG == LATEST_CHECKPOINT_ARTIFACT_TAG_KEY


def test_every_epoch_checkpoint_loads_with_mlflow_load_checkpoint(
    mlflow_store: Any, keras: Any, make_model: Any, data: Any
) -> None:
    import mlflow.tensorflow

    predictions, _ = _fit_with_checkpoints(
        keras, make_model, data, checkpoint=True, checkpoint_save_best_only=False
    )
    run = _only_run(mlflow_store)
    run_id = run.info.run_id
    x, _ = data
    assert (
        run.data.tags["mlflow.latest_checkpoint_artifact"] == "checkpoints/epoch_2/checkpoint.keras"
    )
    expected = {
        f"checkpoints/epoch_{e}/{name}"
        for e in range(3)
        for name in ("checkpoint.keras", "checkpoint_metrics.json")
    }
    assert {a for a in _artifacts(mlflow_store, run_id) if a.startswith("checkpoints/")} == expected
    latest = mlflow.tensorflow.load_checkpoint(run_id=run_id)
    np.testing.assert_allclose(latest.predict(x, verbose=0), predictions[2], rtol=1e-5)
    first = mlflow.tensorflow.load_checkpoint(run_id=run_id, epoch=0)
    np.testing.assert_allclose(first.predict(x, verbose=0), predictions[0], rtol=1e-5)
    record = mlflow_store.download_artifacts(run_id, "checkpoints/epoch_1/checkpoint_metrics.json")
    with open(record, encoding="utf-8") as handle:
        metrics = json.load(handle)
    assert metrics["epoch"] == 1 and metrics["global_step"] == 8  # 4 steps per epoch
    assert metrics["loss"] == pytest.approx(_history(mlflow_store, run_id, "loss")[1][1])


def test_best_checkpoint_loads_with_mlflow_load_checkpoint(
    mlflow_store: Any, keras: Any, make_model: Any, data: Any
) -> None:
    import mlflow.tensorflow

    # The lowest loss: it improves at (nearly) every epoch, each time replacing the file.
    predictions, history = _fit_with_checkpoints(
        keras, make_model, data, checkpoint="best", checkpoint_monitor="loss"
    )
    best = int(np.argmin(history.history["loss"]))
    run = _only_run(mlflow_store)
    run_id = run.info.run_id
    x, _ = data
    assert (
        run.data.tags["mlflow.latest_checkpoint_artifact"] == "checkpoints/latest_checkpoint.keras"
    )
    assert {a for a in _artifacts(mlflow_store, run_id) if a.startswith("checkpoints/")} == {
        "checkpoints/latest_checkpoint.keras",
        "checkpoints/latest_checkpoint_metrics.json",
    }
    improvements = _history(mlflow_store, run_id, "checkpoint_best_epoch")
    assert len(improvements) >= 2 and improvements[-1] == (best, best)
    # Uploaded at each improvement, in order: the store holds the best one.
    model = mlflow.tensorflow.load_checkpoint(run_id=run_id)
    np.testing.assert_allclose(model.predict(x, verbose=0), predictions[best], rtol=1e-5)
    path = mlflow_store.download_artifacts(run_id, "checkpoints/latest_checkpoint_metrics.json")
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle)["epoch"] == best


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_weights_only_and_step_checkpoints_load_with_mlflow_load_checkpoint(
    mlflow_store: Any, keras: Any, make_model: Any, data: Any
) -> None:
    import mlflow.tensorflow

    predictions, _ = _fit_with_checkpoints(
        keras,
        make_model,
        data,
        checkpoint=True,
        checkpoint_save_best_only=False,
        checkpoint_save_weights_only=True,
        checkpoint_save_freq=6,
    )
    run = _only_run(mlflow_store)
    run_id = run.info.run_id
    tag = run.data.tags["mlflow.latest_checkpoint_artifact"]
    assert tag == "checkpoints/global_step_12/checkpoint.weights.h5"  # 3 epochs of 4 steps
    assert {a for a in _artifacts(mlflow_store, run_id) if a.endswith(".h5")} == {
        "checkpoints/global_step_6/checkpoint.weights.h5",
        tag,
    }
    x, _ = data
    model = make_model()  # built (it has an Input): the weights load into it
    latest = mlflow.tensorflow.load_checkpoint(model=model, run_id=run_id)
    assert latest is model
    np.testing.assert_allclose(model.predict(x, verbose=0), predictions[2], rtol=1e-5)
    middle = mlflow.tensorflow.load_checkpoint(model=make_model(), run_id=run_id, global_step=6)
    assert not np.allclose(middle.predict(x, verbose=0), predictions[2])


KILLED_AFTER_TWO_EPOCHS = """
import os, signal, time

import numpy as np
import autolog
from autolog.batching import agent

autolog.autolog(
    frameworks=["keras"], log_models=False, keras={"checkpoint": "best", "checkpoint_monitor": "loss"}
)
import keras

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8)).astype("float32")
y = (x.sum(axis=1) > 0).astype("int64")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")


class Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:  # autolog's callback has seen the end of epochs 0 and 1
            print("AGENT", agent.AGENT.pid, flush=True)
            # What was handed over reaches the run log within log_interval (10 ms): a kill
            # in the same instant as epoch 1's checkpoint could beat it to the log.
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGKILL)


model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[Kill()])
"""


def test_the_best_checkpoint_survives_a_killed_training(mlflow_store: Any, tmp_path: Any) -> None:
    """SIGKILL after two epochs (an OOM kill, a preempted node): the best checkpoint was
    handed over when it was saved, so the delivery agent brings it to the store."""
    import subprocess
    import sys
    import textwrap
    import time

    import mlflow.tensorflow

    from tests.support import agents

    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(KILLED_AFTER_TWO_EPOCHS))
    temp = tmp_path / "temp"  # the training's temporary folders
    temp.mkdir()
    env = agents.child_env(
        MLFLOW_TRACKING_URI=os.environ["MLFLOW_TRACKING_URI"],
        AUTOLOG_SPOOL_DIR=str(tmp_path / "spool"),
        AUTOLOG_AGENT="1",
        AUTOLOG_TESTING="0",
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        TMPDIR=str(temp),
    )
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    pid = agents.agent_pid(result.stdout)
    try:
        assert result.returncode == -9, result.stderr[-3000:]
        assert agents.wait_gone(pid, 60), "the agent did not finish its delivery"
    finally:
        agents.stop(pid)
    deadline = time.monotonic() + 30
    while _only_run(mlflow_store).info.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    run = _only_run(mlflow_store)
    run_id = run.info.run_id
    assert run.info.status == "KILLED"
    assert (
        run.data.tags["mlflow.latest_checkpoint_artifact"] == "checkpoints/latest_checkpoint.keras"
    )
    losses = _history(mlflow_store, run_id, "loss")
    assert [s for s, _ in losses] == [0, 1]
    best = min(losses, key=lambda item: item[1])[0]
    path = mlflow_store.download_artifacts(run_id, "checkpoints/latest_checkpoint_metrics.json")
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle)["epoch"] == best
    model = mlflow.tensorflow.load_checkpoint(run_id=run_id)
    assert model.predict(np.zeros((1, 8), "float32"), verbose=0).shape == (1, 2)
    # The agent deleted the checkpoints' folders once it had delivered them.
    assert [p.name for p in temp.iterdir() if p.name.startswith("autolog-keras-")] == []
