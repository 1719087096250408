"""Framework-specific parts on their own: params, datasets, TF_CONFIG, summaries."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autolog_keras import datasets, distributed, snapshots
from autolog_keras import params as model_params
from autolog_keras.compat import flavor_of

# Importing the plugin --------------------------------------------------------------------


def test_importing_the_plugin_imports_no_framework() -> None:
    code = (
        "import sys, autolog_keras; "
        "assert autolog_keras.KerasPlugin.name == 'keras'; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('keras', 'tensorflow', 'tf_keras', 'mlflow', 'jax', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plugin_is_discovered_through_its_entry_point() -> None:
    import autolog

    info = autolog.available_plugins()["keras"]
    assert info.plugin_class is not None
    assert info.plugin_class.__name__ == "KerasPlugin"


def test_unknown_option_names_the_valid_ones() -> None:
    import autolog

    with pytest.raises(TypeError, match="checkpoint_monitor"):
        autolog.autolog(frameworks=["keras"], keras={"chekpoint": "best"})


def test_bad_option_values_are_rejected() -> None:
    from autolog_keras import KerasOptions

    with pytest.raises(ValueError, match="checkpoint"):
        KerasOptions(checkpoint="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="checkpoint_mode"):
        KerasOptions(checkpoint_mode="up")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"checkpoint": 1}, ValueError, "checkpoint must be True, False, None, 'epoch' or 'best'"),
        ({"checkpoint": True, "checkpoint_save_freq": 0}, ValueError, "checkpoint_save_freq"),
        ({"checkpoint": True, "checkpoint_save_freq": "batch"}, ValueError, "'batch'"),
        ({"checkpoint": True, "checkpoint_save_freq": True}, ValueError, "checkpoint_save_freq"),
        ({"checkpoint": True, "checkpoint_save_weights_only": "yes"}, TypeError, "weights_only"),
        ({"checkpoint": True, "checkpoint_save_best_only": 1}, TypeError, "best_only"),
        ({"checkpoint": True, "checkpoint_monitor": ""}, TypeError, "checkpoint_monitor"),
        # Options that mean nothing while checkpoints are off.
        ({"checkpoint_save_freq": 10}, ValueError, "checkpoint_save_freq=10 has no effect"),
        ({"checkpoint": False, "checkpoint_monitor": "loss"}, ValueError, "checkpoint is False"),
        # The old names imply checkpoint_save_best_only: no contradicting it.
        (
            {"checkpoint": "epoch", "checkpoint_save_best_only": True},
            ValueError,
            "pass checkpoint=True",
        ),
        ({"checkpoint": "best", "checkpoint_save_best_only": False}, ValueError, "'best' means"),
        ({"checkpoint": "epoch", "checkpoint_save_freq": 5}, ValueError, "every N steps"),
        # Step checkpoints only see the training step's metrics.
        (
            {"checkpoint": True, "checkpoint_save_freq": 5, "checkpoint_monitor": "val_loss"},
            ValueError,
            "validation metric",
        ),
    ],
)
def test_checkpoint_options_are_checked_naming_the_option(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    from autolog_keras import KerasOptions

    with pytest.raises(error, match=re.escape(message)):
        KerasOptions(**options)


def test_checkpoint_options_resolve_to_mlflows_policy() -> None:
    from autolog_keras import KerasOptions
    from autolog_keras.checkpoints import CheckpointPolicy

    def policy(has_validation: bool = True, **options: Any) -> Any:
        return CheckpointPolicy.resolve(KerasOptions(**options), has_validation=has_validation)

    assert policy() is None and policy(checkpoint=False) is None
    # checkpoint=True: MLflow's defaults (best only, per epoch, whole model).
    best = policy(checkpoint=True)
    assert (best.best_only, best.save_freq, best.weights_only) == (True, "epoch", False)
    assert (best.monitor, best.mode) == ("val_loss", "min")
    assert best.place(3, 40) == (
        "checkpoints",
        "latest_checkpoint.keras",
        "latest_checkpoint_metrics.json",
    )
    assert policy(has_validation=False, checkpoint="best").monitor == "loss"
    assert policy(checkpoint="best", checkpoint_monitor="val_auc").mode == "max"
    every = policy(checkpoint="epoch", checkpoint_save_weights_only=True)
    assert every.best_only is False
    assert every.place(3, 40) == (
        "checkpoints/epoch_3",
        "checkpoint.weights.h5",
        "checkpoint_metrics.json",
    )
    steps = policy(checkpoint=True, checkpoint_save_best_only=False, checkpoint_save_freq=20)
    assert steps.per_step == 20 and steps.monitor == "loss"
    assert steps.place(3, 40)[0] == "checkpoints/global_step_40"
    assert policy(checkpoint=True, checkpoint_save_best_only=False).per_step is None


# Params ----------------------------------------------------------------------------------


def test_optimizer_params_hold_every_config_value(keras: Any) -> None:
    optimizer = keras.optimizers.Adam(learning_rate=0.001, epsilon=1e-7, beta_1=0.8)
    params = model_params.optimizer_params(optimizer)
    assert params["optimizer_class"] == "Adam"
    # MLflow's name for the optimizer's own name (mlflow.keras.autolog logs the same).
    assert params["optimizer_name"] == optimizer.get_config()["name"]
    assert params["optimizer_learning_rate"] == 0.001  # not 0.0010000000474974513
    assert params["optimizer_epsilon"] == 1e-7
    assert params["optimizer_beta_1"] == 0.8
    assert params["optimizer_beta_2"] == 0.999
    assert "optimizer_amsgrad" in params
    config = optimizer.get_config()
    assert {f"optimizer_{k}" for k in config} <= set(params)


def test_optimizer_schedule_is_flattened(keras: Any) -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    params = model_params.optimizer_params(keras.optimizers.SGD(schedule, momentum=0.9))
    assert params["optimizer_class"] == "SGD"
    assert params["optimizer_learning_rate"] == "ExponentialDecay"
    assert params["optimizer_learning_rate_initial_learning_rate"] == 0.1
    assert params["optimizer_learning_rate_decay_steps"] == 10
    assert params["optimizer_learning_rate_decay_rate"] == 0.5
    assert params["optimizer_momentum"] == 0.9


def test_structure_params_count_parameters(make_model: Any) -> None:
    model = make_model("sequential")
    params = model_params.structure_params(model)
    assert params == {
        "num_layers": 2,
        "total_params": model.count_params(),
        "trainable_params": model.count_params(),
        "non_trainable_params": 0,
    }


def test_structure_params_count_frozen_weights(keras: Any) -> None:
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    params = model_params.structure_params(model)
    assert params["total_params"] == model.count_params() == 15 + 12
    assert params["non_trainable_params"] == 6  # moving mean and variance
    assert params["trainable_params"] == 21


def test_compile_params_name_losses_and_metrics(keras: Any, make_model: Any) -> None:
    model = make_model("functional")
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2")],
    )
    params = model_params.compile_params(model)
    assert params["loss"] == "sparse_categorical_crossentropy"
    assert params["metrics"] == "accuracy, top2"


def test_compile_params_with_a_loss_function(make_model: Any) -> None:
    model = make_model("sequential")

    def my_loss(y_true: Any, y_pred: Any) -> Any:
        return y_pred[:, 0] * 0.0

    model.compile(optimizer="sgd", loss=my_loss)
    params = model_params.compile_params(model)
    assert params["loss"] == "my_loss"
    assert "metrics" not in params


def test_early_stopping_params(keras: Any) -> None:
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=3, min_delta=0.01, restore_best_weights=True
    )
    params = model_params.early_stopping_params(stopper)
    assert params["early_stopping_monitor"] == "val_loss"
    assert params["early_stopping_patience"] == 3
    assert params["early_stopping_min_delta"] == 0.01
    assert params["early_stopping_restore_best_weights"] is True


def test_summary_text_and_tag_truncation(make_model: Any) -> None:
    text = model_params.summary_text(make_model("sequential"))
    assert "Total params" in text and "dense" in text
    assert model_params.summary_tag(text) == text
    long = "x" * 20_000
    tag = model_params.summary_tag(long)
    assert len(tag) == model_params.SUMMARY_TAG_LIMIT
    assert tag.endswith("the full summary is the artifact model_summary.txt]")


def test_flavor_of_models(make_model: Any, keras: Any) -> None:
    flavor = flavor_of(make_model("subclassed"))
    assert flavor.package == "keras"
    assert flavor.major == int(keras.__version__.split(".")[0])
    assert flavor.mlflow_flavor == ("keras" if flavor.major >= 3 else "tensorflow")
    assert "tensorflow" in flavor.requirements
    with pytest.raises(TypeError):
        flavor_of(object())


# Datasets --------------------------------------------------------------------------------


def test_batch_size_of_arrays(data: Any) -> None:
    x, _ = data
    assert datasets.infer_batch_size(x, None).value == 32  # Keras's default
    assert datasets.infer_batch_size(x, 7).value == 7
    assert datasets.infer_batch_size({"a": x, "b": x}, 5).value == 5
    assert datasets.infer_batch_size([x, x], None).value == 32


def test_batch_size_of_a_tf_data_pipeline(data: Any) -> None:
    tf = pytest.importorskip("tensorflow")
    x, y = data
    pipeline = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(16)
        .batch(6)
        .map(lambda a, b: (a * 2, b))
        .prefetch(2)
    )
    assert datasets.infer_batch_size(pipeline, 999).value == 6
    info = datasets.describe(pipeline)
    assert info == datasets.DataInfo(shape="(None, 8)", dtype="float32", samples=64)
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    assert datasets.infer_batch_size(unbatched, None).value is None
    repeated = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    assert datasets.describe(repeated).samples is None  # infinite: no sample count


def test_batch_size_of_a_generator_consumes_nothing(data: Any) -> None:
    x, y = data
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    pulled: list[int] = []

    def gen() -> Any:
        for i, batch in enumerate(batches):
            pulled.append(i)
            yield batch

    original = gen()
    result = datasets.infer_batch_size(original, None)
    assert result.value is None and result.watch is not None
    assert pulled == []  # nothing taken before fit runs
    assert not result.watch.seen and result.watch.batch_size is None
    replayed = list(result.watch.generator)
    assert pulled == [0, 1, 2, 3]
    assert all(a[0] is b[0] for a, b in zip(replayed, batches, strict=True))
    assert result.watch.batch_size == 16 and result.watch.item is batches[0]
    assert datasets.describe_batch(result.watch.item).shape == "(None, 8)"


def test_batch_size_of_a_py_dataset(keras: Any, data: Any) -> None:
    x, y = data
    base = getattr(keras.utils, "PyDataset", None) or keras.utils.Sequence

    class Batches(base):  # type: ignore[misc, valid-type]
        def __len__(self) -> int:
            return 8

        def __getitem__(self, index: int) -> Any:
            return x[index * 8 : (index + 1) * 8], y[index * 8 : (index + 1) * 8]

    batches = Batches()
    assert datasets.infer_batch_size(batches, None).value == 8
    assert datasets.describe(batches).shape == "(None, 8)"


def test_describe_arrays_and_validation_split(data: Any) -> None:
    x, _ = data
    info = datasets.describe(x)
    assert info == datasets.DataInfo("(64, 8)", "float32", 64)
    train, validation = datasets.split(info, 0.25)
    assert train == datasets.DataInfo("(48, 8)", "float32", 48)
    assert validation == datasets.DataInfo("(16, 8)", "float32", 16)
    nested = datasets.describe({"a": x, "b": np.zeros((64,), dtype="int32")})
    assert nested.shape == "{'a': (64, 8), 'b': (64,)}"
    assert nested.dtype == "{'a': float32, 'b': int32}"
    assert nested.samples == 64
    assert datasets.describe(None) == datasets.DataInfo()


# TF_CONFIG -------------------------------------------------------------------------------


def _config(task_type: str, index: int, chief: bool = False) -> dict[str, Any]:
    cluster: dict[str, Any] = {"worker": ["h:1", "h:2"]}
    if chief:
        cluster["chief"] = ["h:0"]
    return {"cluster": cluster, "task": {"type": task_type, "index": index}}


@pytest.mark.parametrize(
    ("config", "chief"),
    [
        ({}, True),
        (_config("worker", 0), True),
        (_config("worker", 1), False),
        (_config("worker", 0, chief=True), False),
        (_config("chief", 0, chief=True), True),
        (_config("ps", 0), False),
        (_config("evaluator", 0), False),
    ],
)
def test_is_chief(config: dict[str, Any], chief: bool) -> None:
    assert distributed.is_chief(config) is chief


def test_tf_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from autolog_keras import KerasPlugin

    monkeypatch.setenv("TF_CONFIG", json.dumps(_config("worker", 1, chief=True)))
    assert KerasPlugin().is_chief() is False
    assert distributed.worker_count() == 3
    monkeypatch.setenv("TF_CONFIG", "not json")
    assert KerasPlugin().is_chief() is True
    assert distributed.worker_count() is None
    monkeypatch.delenv("TF_CONFIG")
    assert KerasPlugin().is_chief() is True


def test_a_snapshot_model_saves_by_copying_and_loads_for_anything_else(
    make_model: Any, data: Any, tmp_path: Any
) -> None:
    model = make_model("sequential")
    x, y = data
    model.fit(x, y, epochs=1, verbose=0)  # a trained optimizer, as after a real fit
    path = snapshots.save(model, "model.keras")
    loads: list[str] = []

    def load() -> Any:
        loads.append(path)
        return flavor_of(model).load_model(path)

    stand_in = snapshots.SnapshotModel(path, load)
    copy = tmp_path / "copy.keras"
    stand_in.save(str(copy))
    assert copy.read_bytes() == Path(path).read_bytes()
    assert loads == []  # saving did not load the model
    np.testing.assert_allclose(stand_in.predict(x, verbose=0), model.predict(x, verbose=0))
    assert len(stand_in.layers) == len(model.layers)
    assert loads == [path]  # loaded once, on first use
    shutil.rmtree(os.path.dirname(path))
