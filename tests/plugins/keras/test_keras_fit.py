"""What ``fit`` and ``evaluate`` log, through autolog's in-memory store (no MLflow)."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import numpy as np
import pytest

import autolog
from tests.plugins.keras.conftest import predictions_at_epoch_end

EPOCHS = 3
STEPS = 4  # 64 rows, batch 16


def _fit(model: Any, data: Any, **kwargs: Any) -> Any:
    x, y = data
    kwargs.setdefault("epochs", EPOCHS)
    kwargs.setdefault("batch_size", 16)
    kwargs.setdefault("verbose", 0)
    return model.fit(x, y, **kwargs)


# Params, metrics, tags, artifacts --------------------------------------------------------


def test_a_fit_logs_params_metrics_summary_and_model(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable(log_models=True)
    model = make_model("functional")
    history = _fit(model, data, validation_split=0.25)
    run = memory.last_run()
    assert run.status == "FINISHED"
    assert run.tags["autolog.plugin"] == "keras"
    assert run.tags["mlflow.autologging"] == "keras"

    p = run.params
    assert p["epochs"] == str(EPOCHS) and p["batch_size"] == "16"
    assert p["validation_split"] == "0.25" and p["shuffle"] == "True"
    assert p["initial_epoch"] == "0" and p["validation_freq"] == "1"
    assert p["num_layers"] == str(len(model.layers))
    assert p["total_params"] == p["trainable_params"] == str(model.count_params())
    assert p["optimizer_class"] == "Adam" and p["optimizer_learning_rate"] == "0.01"
    assert p["optimizer_name"] == model.optimizer.name
    assert "optimizer_epsilon" in p and "optimizer_beta_1" in p
    assert p["loss"] == "sparse_categorical_crossentropy" and p["metrics"] == "accuracy"
    assert p["dataset_train_shape"] == "(48, 8)" and p["dataset_train_samples"] == "48"
    assert p["dataset_validation_shape"] == "(16, 8)"
    assert p["dataset_validation_dtype"] == "float32"
    assert "verbose" not in p and "x" not in p and "callbacks" not in p

    # Every epoch-log key, with step = epoch, equal to what Keras returned.
    for key, values in history.history.items():
        if key in ("lr", "learning_rate"):
            continue
        steps, logged = zip(*run.metric_history(key), strict=True)
        assert list(steps) == list(range(EPOCHS)), key
        np.testing.assert_allclose(logged, values, rtol=1e-6)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert [s for s, _ in run.metric_history("learning_rate")] == list(range(EPOCHS))
    assert run.last_metric("learning_rate") == pytest.approx(0.01)
    assert all(v > 0 for _, v in run.metric_history("epoch_duration"))
    assert not any(k.startswith("batch_") for k in run.metrics)  # per epoch by default
    assert not any(k.startswith("eval_") for k in run.metrics)  # validation is not eval

    assert "Total params" in run.tags["model_summary"]
    with open(run.artifacts["model_summary.txt"], encoding="utf-8") as handle:
        assert handle.read().startswith(run.tags["model_summary"].rstrip()[:40])
    assert "model.keras" not in run.artifacts  # one copy: the logged model's
    assert len(run.models) == 1
    logged = run.models[0]
    assert logged["artifact_path"] == "model"
    assert logged["signature"]["inputs"][0]["tensor-spec"]["shape"] == [-1, 8]
    x, _ = data
    np.testing.assert_array_equal(logged["input_example"], x[:5])
    assert run.model_metrics["loss"] == pytest.approx(history.history["loss"][-1])
    # The data fit saw, split as Keras splits it, for the core to describe.
    train, validation = run.datasets
    assert (train["context"], validation["context"]) == ("train", "validation")
    np.testing.assert_array_equal(train["features"], x[:48])
    np.testing.assert_array_equal(validation["targets"], data[1][48:])
    np.testing.assert_allclose(
        logged["model"].predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5
    )


def test_keras_file_is_loadable(
    enable: Any, memory: Any, make_model: Any, data: Any, keras: Any
) -> None:
    enable()
    model = make_model("sequential")
    _fit(model, data, epochs=1)
    run = memory.last_run()
    assert run.models == []  # log_models=False
    reloaded = keras.models.load_model(run.artifacts["model.keras"])
    x, _ = data
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5
    )


def test_batch_metrics_every_n_steps_at_the_global_step(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable(log_every_n_steps=3)
    _fit(make_model(), data)
    run = memory.last_run()
    total = EPOCHS * STEPS
    expected = [s for s in range(1, total + 1) if s % 3 == 0]
    assert [s for s, _ in run.metric_history("batch_loss")] == expected
    assert [s for s, _ in run.metric_history("batch_accuracy")] == expected
    assert [s for s, _ in run.metric_history("loss")] == list(range(EPOCHS))


def test_global_step_continues_across_fits_of_one_model(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable(log_every_n_steps=1)
    model = make_model()
    _fit(model, data, epochs=1)
    _fit(model, data, epochs=1)
    first, second = list(memory.runs.values())
    assert [s for s, _ in first.metric_history("batch_loss")] == [1, 2, 3, 4]
    assert [s for s, _ in second.metric_history("batch_loss")] == [5, 6, 7, 8]


def test_steps_per_execution(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable(log_every_n_steps=2)
    model = make_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", steps_per_execution=2)
    _fit(model, data, epochs=2, batch_size=8)  # 8 steps per epoch, reported every 2
    steps = [s for s, _ in memory.last_run().metric_history("batch_loss")]
    assert steps == list(range(2, 17, 2))


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_model_kinds(enable: Any, memory: Any, make_model: Any, data: Any, kind: str) -> None:
    enable(log_models=True)
    model = make_model(kind)
    _fit(model, data, epochs=2)
    run = memory.last_run()
    assert run.params["num_layers"] == str(len(model.layers))
    assert run.params["total_params"] == str(model.count_params())
    assert "model_summary" in run.tags
    assert len(run.metric_history("loss")) == 2
    assert len(run.models) == 1
    x, _ = data
    np.testing.assert_allclose(
        run.models[0]["model"].predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5
    )


def test_learning_rate_follows_schedules(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=STEPS, decay_rate=0.5)
    _fit(make_model(optimizer=keras.optimizers.SGD(schedule)), data)
    run = memory.last_run()
    rates = [v for _, v in run.metric_history("learning_rate")]
    np.testing.assert_allclose(rates, [0.1, 0.05, 0.025], rtol=1e-5)
    assert run.params["optimizer_learning_rate"] == "ExponentialDecay"
    assert run.params["optimizer_learning_rate_decay_rate"] == "0.5"


def test_learning_rate_under_reduce_lr_on_plateau(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable()
    # A falling loss never "improves" in max mode: the rate is cut after epoch 1, and the
    # logged rate is the one each epoch trained with.
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", mode="max", factor=0.5, patience=0, min_delta=100.0, min_lr=0.0
    )
    _fit(make_model(), data, callbacks=[plateau])
    rates = [v for _, v in memory.last_run().metric_history("learning_rate")]
    np.testing.assert_allclose(rates, [0.01, 0.01, 0.005], rtol=1e-5)


def test_early_stopping_params_and_results(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable()
    # Nothing is an improvement after epoch 0, so training stops after epoch 1.
    stopper = keras.callbacks.EarlyStopping(
        monitor="loss", patience=1, min_delta=100.0, restore_best_weights=True
    )
    history = _fit(make_model(), data, epochs=10, callbacks=[stopper])
    run = memory.last_run()
    assert len(history.epoch) == 2
    assert run.params["early_stopping_monitor"] == "loss"
    assert run.params["early_stopping_patience"] == "1"
    assert run.params["early_stopping_min_delta"] == "100.0"
    assert run.params["early_stopping_restore_best_weights"] == "True"
    assert run.last_metric("stopped_epoch") == 1
    assert run.last_metric("restored_epoch") == 0


# Callbacks -----------------------------------------------------------------------------


class _Recorder:
    """A user callback, built per Keras flavour."""

    @staticmethod
    def make(keras: Any) -> Any:
        class Recorder(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.epochs: list[int] = []

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.epochs.append(epoch)

        return Recorder()


@pytest.mark.parametrize("form", ["list", "tuple", "none", "positional", "missing"])
def test_callbacks_are_added_without_touching_the_callers(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any, form: str
) -> None:
    enable()
    x, y = data
    recorder = _Recorder.make(keras)
    model = make_model()
    if form == "list":
        given: Any = [recorder]
        model.fit(x, y, epochs=2, verbose=0, callbacks=given)
    elif form == "tuple":
        given = (recorder,)
        model.fit(x, y, epochs=2, verbose=0, callbacks=given)
    elif form == "none":
        given = None
        model.fit(x, y, epochs=2, verbose=0, callbacks=None)
    elif form == "positional":
        given = [recorder]
        model.fit(x, y, 16, 2, 0, given)
    else:
        given = None
        model.fit(x, y, epochs=2, verbose=0)
    if isinstance(given, list):
        assert given == [recorder] and len(given) == 1
    if isinstance(given, tuple):
        assert given == (recorder,)
    if given is not None:
        assert recorder.epochs == [0, 1]
    assert len(memory.last_run().metric_history("loss")) == 2


def test_the_same_list_reused_never_grows(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable()
    callbacks = [_Recorder.make(keras)]
    model = make_model()
    for _ in range(2):
        _fit(model, data, epochs=1, callbacks=callbacks)
    assert len(callbacks) == 1
    assert len(memory.runs) == 2
    for run in memory.runs.values():
        assert len(run.metric_history("loss")) == 1  # one autolog callback per fit


def test_a_callback_list_object_is_used_as_is(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable()
    model = make_model()
    recorder = _Recorder.make(keras)
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=3)
    given = keras.callbacks.CallbackList([recorder, stopper], add_history=True, model=model)
    _fit(model, data, epochs=2, callbacks=given)
    assert recorder.epochs == [0, 1]
    assert len(given.callbacks) == 3  # the user's two and Keras's History, not ours
    run = memory.last_run()
    assert run.params["early_stopping_patience"] == "3"
    assert "model.keras" in run.artifacts


def test_user_callbacks_keep_working(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any, tmp_path: Any
) -> None:
    enable()
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "ckpt.keras"))
    csv = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    recorder = _Recorder.make(keras)
    callbacks = [checkpoint, csv, recorder]
    has_tensorboard = importlib.util.find_spec("tensorboard") is not None
    if has_tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb")))
    _fit(make_model(), data, epochs=2, callbacks=callbacks)
    assert (tmp_path / "ckpt.keras").exists()
    if has_tensorboard:
        assert any((tmp_path / "tb").rglob("*"))
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 3
    assert recorder.epochs == [0, 1]
    assert len(memory.last_run().metric_history("loss")) == 2


# Checkpoints ---------------------------------------------------------------------------


LATEST_TAG = "mlflow.latest_checkpoint_artifact"  # MLflow's LATEST_CHECKPOINT_ARTIFACT_TAG_KEY


def _checkpoint_files(run: Any) -> list[str]:
    return sorted(k for k in run.artifacts if k.startswith("checkpoints/"))


def _json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return dict(json.load(handle))


def test_checkpoint_every_epoch_in_mlflows_layout(
    enable: Any, memory: Any, make_model: Any, data: Any, keras: Any
) -> None:
    enable(checkpoint="epoch")
    recorder = predictions_at_epoch_end(keras, data[0])
    history = _fit(make_model(), data, callbacks=[recorder])
    run = memory.last_run()
    expected = []
    for e in range(EPOCHS):
        expected += [
            f"checkpoints/epoch_{e}/checkpoint.keras",
            f"checkpoints/epoch_{e}/checkpoint_metrics.json",
        ]
    assert _checkpoint_files(run) == sorted(expected)
    # The metrics file: what Keras reported for the epoch, plus epoch and global step.
    record = _json(run.artifacts["checkpoints/epoch_1/checkpoint_metrics.json"])
    assert record["epoch"] == 1 and record["global_step"] == 2 * STEPS
    assert record["loss"] == pytest.approx(history.history["loss"][1])
    assert "epoch_duration" not in record  # autolog's own metric, not Keras's
    assert run.tags[LATEST_TAG] == f"checkpoints/epoch_{EPOCHS - 1}/checkpoint.keras"
    # Each file is the model as it was at the end of its epoch.
    reloaded = keras.models.load_model(run.artifacts["checkpoints/epoch_0/checkpoint.keras"])
    np.testing.assert_allclose(
        reloaded.predict(data[0], verbose=0), recorder.predictions[0], rtol=1e-5
    )
    assert "checkpoint_best_epoch" not in run.metrics


def test_checkpoint_best_by_monitor(
    enable: Any, memory: Any, make_model: Any, data: Any, keras: Any
) -> None:
    enable(checkpoint="best", checkpoint_monitor="loss", checkpoint_mode="max")
    recorder = predictions_at_epoch_end(keras, data[0])
    history = _fit(make_model(), data, callbacks=[recorder])
    run = memory.last_run()
    best_epoch = int(np.argmax(history.history["loss"]))
    assert run.last_metric("checkpoint_best_epoch") == best_epoch
    assert _checkpoint_files(run) == [
        "checkpoints/latest_checkpoint.keras",
        "checkpoints/latest_checkpoint_metrics.json",
    ]
    assert run.tags[LATEST_TAG] == "checkpoints/latest_checkpoint.keras"
    record = _json(run.artifacts["checkpoints/latest_checkpoint_metrics.json"])
    assert record["epoch"] == best_epoch and record["global_step"] == (best_epoch + 1) * STEPS
    assert record["loss"] == pytest.approx(max(history.history["loss"]))
    reloaded = keras.models.load_model(run.artifacts["checkpoints/latest_checkpoint.keras"])
    np.testing.assert_allclose(
        reloaded.predict(data[0], verbose=0), recorder.predictions[best_epoch], rtol=1e-5
    )


def test_checkpoint_true_is_mlflows_default_best_val_loss(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable(checkpoint=True)
    history = _fit(make_model(), data, validation_split=0.25)
    run = memory.last_run()
    best_epoch = int(np.argmin(history.history["val_loss"]))
    assert run.tags[LATEST_TAG] == "checkpoints/latest_checkpoint.keras"
    record = _json(run.artifacts["checkpoints/latest_checkpoint_metrics.json"])
    assert record["epoch"] == best_epoch
    assert record["val_loss"] == pytest.approx(min(history.history["val_loss"]))


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_weights_only_checkpoints_load_into_the_model(
    enable: Any, memory: Any, make_model: Any, data: Any, keras: Any
) -> None:
    enable(checkpoint=True, checkpoint_save_best_only=False, checkpoint_save_weights_only=True)
    recorder = predictions_at_epoch_end(keras, data[0])
    _fit(make_model(), data, callbacks=[recorder])
    run = memory.last_run()
    assert f"checkpoints/epoch_{EPOCHS - 1}/checkpoint.weights.h5" in run.artifacts
    assert not any(k.endswith(".keras") for k in _checkpoint_files(run))
    assert run.tags[LATEST_TAG] == f"checkpoints/epoch_{EPOCHS - 1}/checkpoint.weights.h5"
    fresh = make_model()
    fresh.load_weights(run.artifacts["checkpoints/epoch_1/checkpoint.weights.h5"])
    np.testing.assert_allclose(
        fresh.predict(data[0], verbose=0), recorder.predictions[1], rtol=1e-5
    )


def test_checkpoint_every_n_steps_at_the_global_step(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable(checkpoint=True, checkpoint_save_best_only=False, checkpoint_save_freq=5)
    _fit(make_model(), data)  # 3 epochs of 4 steps: steps 5 and 10
    run = memory.last_run()
    assert _checkpoint_files(run) == [
        f"checkpoints/global_step_{s}/{name}"
        for s in (10, 5)
        for name in ("checkpoint.keras", "checkpoint_metrics.json")
    ]
    record = _json(run.artifacts["checkpoints/global_step_5/checkpoint_metrics.json"])
    assert record["epoch"] == 1 and record["global_step"] == 5 and "loss" in record
    assert run.tags[LATEST_TAG] == "checkpoints/global_step_10/checkpoint.keras"
    assert not any(k.startswith("batch_") for k in run.metrics)  # log_every_n_steps is off


def test_best_checkpoint_every_n_steps_on_the_step_loss(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable(log_every_n_steps=1, checkpoint="best", checkpoint_save_freq=2)
    _fit(make_model(), data)
    run = memory.last_run()
    steps = [s for s, _ in run.metric_history("checkpoint_best_epoch")]
    assert steps  # at least the first one
    record = _json(run.artifacts["checkpoints/latest_checkpoint_metrics.json"])
    assert record["global_step"] % 2 == 0
    # The monitored value (the step's running loss) is the lowest of the steps checked.
    checked = [v for s, v in run.metric_history("batch_loss") if s % 2 == 0]
    assert record["loss"] == pytest.approx(min(checked))


def test_best_checkpoint_is_kept_when_fit_fails(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable(checkpoint="best")

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _fit(make_model(), data, callbacks=[Boom()])
    run = memory.last_run()
    assert run.status == "FAILED"
    # Handed over when it was saved, at the end of epoch 0.
    assert run.tags[LATEST_TAG] == "checkpoints/latest_checkpoint.keras"
    assert _json(run.artifacts["checkpoints/latest_checkpoint_metrics.json"])["epoch"] == 0


def test_a_monitor_never_reported_is_named_in_a_warning(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable(checkpoint="best", checkpoint_monitor="val_acuracy")
    with pytest.warns(autolog.AutologWarning, match="'val_acuracy' was never among"):
        _fit(make_model(), data, validation_split=0.25)
    run = memory.last_run()
    assert _checkpoint_files(run) == [] and LATEST_TAG not in run.tags


# Runs ----------------------------------------------------------------------------------


def test_evaluate_after_fit_logs_into_the_fit_run(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable()
    model = make_model()
    x, y = data
    _fit(model, data, epochs=1, validation_data=(x, y))
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert len(memory.runs) == 1
    run = memory.last_run()
    assert run.last_metric("eval_loss") == pytest.approx(loss)
    assert run.last_metric("eval_accuracy") == pytest.approx(accuracy)
    assert len(run.metric_history("eval_loss")) == 1  # fit's own validation is not logged
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert run.metric_history("eval_loss")[-1][1] == pytest.approx(result["loss"])


def test_evaluate_without_fit_gets_its_own_run(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable()
    model = make_model()
    x, y = data
    model.evaluate(x, y, verbose=0, callbacks=[])
    run = memory.last_run()
    assert set(run.metrics) == {"eval_loss", "eval_accuracy"}
    assert run.params == {}


def test_two_fits_make_two_runs(enable: Any, memory: Any, make_model: Any, data: Any) -> None:
    enable()
    model = make_model()
    _fit(model, data, epochs=1)
    _fit(model, data, epochs=2)
    first, second = memory.runs.values()
    assert first.params["epochs"] == "1" and second.params["epochs"] == "2"
    assert first.status == second.status == "FINISHED"


def test_a_fit_in_the_users_run_logs_there(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable()
    run_id = memory.start_user_run()
    _fit(make_model(), data, epochs=1)
    assert list(memory.runs) == [run_id]
    assert memory.runs[run_id].status == "RUNNING"  # the user's run stays open
    assert "loss" in memory.runs[run_id].metrics


def test_a_nested_fit_logs_once(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable()
    inner = make_model()
    x, y = data

    class Outer(keras.callbacks.Callback):
        def on_train_end(self, logs: Any = None) -> None:
            inner.fit(x, y, epochs=1, verbose=0)

    _fit(make_model(), data, epochs=1, callbacks=[Outer()])
    assert len(memory.runs) == 1
    assert len(memory.last_run().metric_history("loss")) == 1


def test_the_users_exception_is_unchanged(
    enable: Any, memory: Any, make_model: Any, data: Any
) -> None:
    enable()
    x, _ = data
    model = make_model()
    with pytest.raises(ValueError) as caught:
        model.fit(x, np.zeros((3,)), epochs=1, verbose=0)  # mismatched sample counts
    plain = make_model()
    import autolog

    autolog.disable()
    with pytest.raises(ValueError) as reference:
        plain.fit(x, np.zeros((3,)), epochs=1, verbose=0)
    assert type(caught.value) is type(reference.value)
    assert memory.last_run().status == "FAILED"


def test_keyboard_interrupt_kills_the_run(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable()

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fit(make_model(), data, callbacks=[Stop()])
    assert memory.last_run().status == "KILLED"


# Inputs --------------------------------------------------------------------------------


def test_tf_data_input(enable: Any, memory: Any, make_model: Any, data: Any) -> None:
    tf = pytest.importorskip("tensorflow")
    enable()
    x, y = data
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).prefetch(1)
    validation = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(8)
    make_model().fit(train, validation_data=validation, epochs=1, verbose=0)
    p = memory.last_run().params
    assert p["batch_size"] == "8"
    assert p["dataset_train_shape"] == "(None, 8)" and p["dataset_train_samples"] == "64"
    assert p["dataset_validation_samples"] == "16"


def test_generator_input_is_fully_consumed_by_fit(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable(log_every_n_steps=1)
    x, y = data
    seen: list[int] = []

    def batches() -> Any:
        for i in range(0, 64, 16):
            seen.append(i)
            yield x[i : i + 16], y[i : i + 16]

    make_model().fit(batches(), epochs=1, steps_per_epoch=4, verbose=0)
    run = memory.last_run()
    assert seen == [0, 16, 32, 48]
    assert run.params["batch_size"] == "16"
    assert run.params["dataset_train_shape"] == "(None, 8)"
    assert [s for s, _ in run.metric_history("batch_loss")] == [1, 2, 3, 4]


# Off switches ------------------------------------------------------------------------------


def test_custom_keys_added_by_user_callbacks_are_logged(
    enable: Any, memory: Any, keras: Any, make_model: Any, data: Any
) -> None:
    enable()

    class Extra(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs["custom_score"] = 10.0 + epoch

    _fit(make_model(), data, epochs=2, callbacks=[Extra()])
    assert memory.last_run().metric_history("custom_score") == [(0, 10.0), (1, 11.0)]


def test_options_turn_parts_off(enable: Any, memory: Any, make_model: Any, data: Any) -> None:
    enable(log_keras_file=False, log_datasets=False, log_model_summary=False)
    _fit(make_model(), data, epochs=1)
    run = memory.last_run()
    assert run.artifacts == {}
    assert "model_summary" not in run.tags
    assert not any(k.startswith("dataset_") for k in run.params)
    assert run.params["num_layers"] == "2"


def test_disabled_plugin_logs_nothing(enable: Any, memory: Any, make_model: Any, data: Any) -> None:
    import autolog

    enable()
    autolog.disable(["keras"])
    _fit(make_model(), data, epochs=1)
    assert memory.runs == {}


def test_no_temp_files_are_left_behind(
    enable: Any,
    make_model: Any,
    data: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    from autolog.testing import capture

    def snapshot_folders() -> list[str]:
        return [p.name for p in tmp_path.iterdir() if p.name.startswith("autolog-keras-")]

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = make_model()
    with capture() as store:
        enable(checkpoint="best")
        _fit(model, data)
        # The model file and the best checkpoint were handed over to the sink, which kept
        # its copies and deleted their folders; superseded checkpoints were discarded.
        assert snapshot_folders() == []
        assert {"model.keras", "checkpoints/latest_checkpoint.keras"} <= set(
            store.last_run().artifacts
        )
        enable(checkpoint="epoch", log_models=True)
        _fit(model, data)
        # The model's snapshot was handed over with it: the in-memory sink keeps it while
        # the block lasts (the recorded model may read it), the real one once packaged.
        assert len(snapshot_folders()) == 1
        assert store.last_run().models[0]["flavor"] in ("keras", "tensorflow")
    assert snapshot_folders() == []
