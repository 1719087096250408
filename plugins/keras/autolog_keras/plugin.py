"""The Keras plugin: what it patches, its options, and the hooks around ``fit``/``evaluate``.

Targets cover the three Keras lines; each is optional because only one of them exists in a
given environment:

* Keras 3: ``keras.src.models.model:Model.fit`` (lands on the backend trainer class that
  defines ``fit``, e.g. ``TensorFlowTrainer``).
* Keras 2 / ``tf.keras`` 2.13+: ``keras.src.engine.training:Model.fit``.
* ``tf_keras``: ``tf_keras.src.engine.training:Model.fit``.

The ``fit`` hooks log params and the training/validation data as dataset inputs, add the
logging callback (to a new list: the caller's list or tuple is never touched) and, after
training, hand the model over as an MLflow LoggedModel (or, without ``log_models``, as a
``.keras`` file). ``evaluate`` logs its data as the ``eval`` dataset and ``eval_<name>``
into the run of the last ``fit`` of the same model, linked to that fit's model; the
``evaluate`` Keras runs inside ``fit`` for validation is a nested call the core skips.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Literal, cast

from autolog import Call, Patch, Plugin, PluginOptions, RunSink, warm_up_models
from autolog.mlflow_backend import steps_aside_for_mlflow
from autolog.options import check_log_every_n_steps
from autolog_keras import checkpoints, datasets, distributed, snapshots
from autolog_keras import params as model_params
from autolog_keras.callback import (
    FitSettings,
    eval_callback_class,
    fit_callback_class,
    is_autolog_callback,
)
from autolog_keras.compat import KerasFlavor, custom_objects, flavor_of

__all__ = ["KerasOptions", "KerasPlugin"]

# fit arguments logged as params by the core, exactly as passed (or their defaults).
# batch_size is logged by the plugin instead: it is inferred when not given.
_FIT_CAPTURE = (
    "epochs",
    "steps_per_epoch",
    "validation_split",
    "validation_freq",
    "validation_steps",
    "validation_batch_size",
    "shuffle",
    "initial_epoch",
    "class_weight",
)

# MLflow's autologging integrations that patch Keras's fit.
_MLFLOW_INTEGRATIONS = ("keras", "tensorflow")


@dataclasses.dataclass
class KerasOptions(PluginOptions):
    """Options of the Keras plugin (``autolog.autolog(keras={...})``).

    Attributes:
        log_every_n_steps: also log batch metrics (``batch_<name>``) every N optimizer steps
            at the global step; ``None``: per epoch only. Inherits ``autolog()``'s value.
        log_models: log the trained model as an MLflow LoggedModel named ``model``, with a
            signature and an input example of five training rows (loadable with
            ``mlflow.keras.load_model("models:/<model_id>")`` / ``mlflow.pyfunc.load_model``).
            Inherits ``autolog()``'s value.
        log_keras_file: without ``log_models``, log the trained model as the run artifact
            ``model.keras`` (with it, the LoggedModel holds that same file).
        checkpoint: log checkpoints during training, in MLflow 3's layout (they load with
            ``mlflow.tensorflow.load_checkpoint``): ``True`` as the other ``checkpoint_*``
            options say; ``"best"`` is ``True`` keeping the best one only
            (``checkpoints/latest_checkpoint.keras``), ``"epoch"`` is ``True`` keeping one
            per epoch (``checkpoints/epoch_<n>/checkpoint.keras``); ``None`` or ``False``
            (default): no checkpoints.
        checkpoint_monitor: the metric that decides the best checkpoint; default
            ``val_loss`` when ``fit`` validates (and checkpoints per epoch), else ``loss``.
        checkpoint_mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy-like names).
        checkpoint_save_best_only: keep only the best checkpoint, replaced when the
            monitored value improves (``None``: as ``checkpoint`` says; ``True`` for
            ``checkpoint=True``, MLflow's default).
        checkpoint_save_weights_only: save the weights only (``checkpoint.weights.h5``),
            not the whole model.
        checkpoint_save_freq: ``"epoch"``, or a checkpoint every this many optimizer steps
            (``checkpoints/global_step_<n>/``).
        log_datasets: log the training, validation and ``evaluate`` data as MLflow dataset
            inputs (arrays and DataFrames; generators and pipelines are not read again), and
            shape, dtype and sample count of the inputs as params.
        log_model_summary: log ``model.summary()`` as the tag ``model_summary`` and the
            artifact ``model_summary.txt``.
    """

    log_keras_file: bool = True
    checkpoint: bool | Literal["best", "epoch"] | None = None
    checkpoint_monitor: str | None = None
    checkpoint_mode: Literal["auto", "min", "max"] = "auto"
    checkpoint_save_best_only: bool | None = None
    checkpoint_save_weights_only: bool = False
    checkpoint_save_freq: Literal["epoch"] | int = "epoch"
    log_datasets: bool = True
    log_model_summary: bool = True

    def __post_init__(self) -> None:
        # The core's rule for the common option (a positive int or None): one rule everywhere.
        check_log_every_n_steps(self.log_every_n_steps)
        checkpoints.check_options(self)


# fit -----------------------------------------------------------------------------------


def before_fit(call: Call) -> None:
    model = call.instance
    options = cast(KerasOptions, call.options)
    sink = _sink(call)
    flavor = flavor_of(model)
    if options.log_models:
        # The first packaged model's one-off work, done by the core while training runs.
        warm_up_models(flavor.mlflow_flavor, flavor.requirements)

    given = call.get("callbacks")
    callbacks = _callbacks_list(given)
    stoppers = [cb for cb in callbacks if _is_early_stopping(cb, flavor)]
    batch = datasets.infer_batch_size(call.get("x"), call.get("batch_size"))

    params: dict[str, Any] = {}
    if batch.value is not None:
        params["batch_size"] = batch.value
    params.update(model_params.optimizer_params(getattr(model, "optimizer", None)))
    params.update(model_params.compile_params(model))
    params.update(distributed.cluster_params(model))
    for stopper in stoppers[:1]:
        params.update(model_params.early_stopping_params(stopper))
    if options.log_datasets:
        params.update(_dataset_params(call, batch))
    sink.log_params(params)
    if options.log_datasets:
        _log_fit_datasets(call, sink)

    if _is_callback_list(given) or any(is_autolog_callback(cb) for cb in callbacks):
        return  # Keras uses a CallbackList as it is: there is no list to add ours to
    checkpoint = checkpoints.CheckpointPolicy.resolve(options, has_validation=_validates(call))
    settings = FitSettings(
        sink=sink,
        flavor=flavor,
        every_n_steps=options.log_every_n_steps,
        checkpoint=checkpoint,
        early_stopping=tuple(stoppers),
        log_summary=options.log_model_summary,
        first_item=batch.watch,
        log_datasets=options.log_datasets,
    )
    # Batch hooks only when something happens per step (Keras 2 skips them otherwise).
    per_step = options.log_every_n_steps is not None or (
        checkpoint is not None and checkpoint.per_step is not None
    )
    callback = fit_callback_class(flavor.package, per_step)(settings)
    call.state["callback"] = callback
    # Last, so that nothing can fail after the arguments were replaced.
    if batch.watch is not None:
        call.replace("x", batch.watch.generator)
    call.replace("callbacks", [*callbacks, callback])


def after_fit(call: Call, history: Any) -> None:
    options = cast(KerasOptions, call.options)
    model = call.instance
    if not (options.log_keras_file or options.log_models):
        return
    flavor = flavor_of(model)
    sink = _sink(call)
    if not options.log_models:
        # The only copy of the model: the LoggedModel holds this file when there is one.
        # Its folder is the sink's from here: deleted once uploaded.
        sink.log_temp_artifacts(snapshots.save(model, "model.keras"), None)
        return
    example = _input_example(call)
    signature = _signature(model, example)
    objects = custom_objects(model)
    path = snapshots.save(model, "model.keras")  # last: nothing may fail before the handover
    sink.log_model(
        flavor.mlflow_flavor,
        loader=_Loader(flavor, path, objects, example),
        artifact_path="model",
        signature=signature,
        input_example=example,
        requirements=flavor.requirements,
        # The loader reads the snapshot on the core's worker; the sink deletes its folder
        # once the model is packaged.
        temp_dir=os.path.dirname(path),
    )


def _sink(call: Call) -> RunSink:
    # The core runs hooks only in a process that writes, always with a sink.
    if call.sink is None:
        raise RuntimeError("autolog called a Keras hook without a run sink")
    return call.sink


class _Loader:
    """The model to package, from its snapshot, on the batching layer's worker.

    For Keras 3, MLflow's ``keras`` flavor only calls ``model.save`` on the model it
    packages, so it gets a `snapshots.SnapshotModel` that copies the file instead of
    loading it back and saving it again. Keras 2 models go to MLflow's
    ``tensorflow`` flavor, which needs the real model.
    """

    def __init__(
        self, flavor: KerasFlavor, path: str, objects: dict[str, Any], example: Any = None
    ) -> None:
        self.flavor = flavor
        self.path = path
        self.objects = objects
        self.example = example

    def __call__(self) -> Any:
        if self.flavor.mlflow_flavor == "keras":
            return snapshots.SnapshotModel(self.path, self.load)
        return self.load()

    def load(self) -> Any:
        model = self.flavor.load_model(self.path, self.objects)
        if self.example is not None and not _keras_tensors(model, "inputs"):
            # A subclassed Keras 2 model comes back without a forward pass that TensorFlow
            # can export; one call on the example rows traces it.
            model(self.example)
        return model


def _callbacks_list(value: Any) -> list[Any]:
    """The caller's callbacks as a new list (a ``CallbackList``'s own callbacks)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if _is_callback_list(value):
        return list(getattr(value, "callbacks", []))
    return [value]


def _is_callback_list(value: Any) -> bool:
    return type(value).__name__ == "CallbackList"


def _is_early_stopping(callback: Any, flavor: KerasFlavor) -> bool:
    early_stopping = getattr(flavor.callbacks, "EarlyStopping", None)
    return early_stopping is not None and isinstance(callback, early_stopping)


def _validates(call: Call) -> bool:
    return call.get("validation_data") is not None or bool(call.get("validation_split") or 0)


def _dataset_params(call: Call, batch: datasets.BatchSize) -> dict[str, Any]:
    # A generator is described by the fit callback, once Keras pulled its first item.
    train = datasets.DataInfo() if batch.watch is not None else datasets.describe(call.get("x"))
    validation = datasets.DataInfo()
    split = float(call.get("validation_split") or 0)
    if split and call.get("validation_data") is None:
        train, validation = datasets.split(train, split)
    else:
        data = call.get("validation_data")
        if isinstance(data, (tuple, list)) and data and not _is_array_like(data):
            data = data[0]
        validation = datasets.describe(data)
    return {**train.as_params("dataset_train"), **validation.as_params("dataset_validation")}


def _is_array_like(value: Any) -> bool:
    return hasattr(value, "shape")


def _log_fit_datasets(call: Call, sink: RunSink) -> None:
    """The training and validation data as dataset inputs (described by the core, later)."""
    x, y = _features_and_targets(call.get("x"), call.get("y"))
    split = float(call.get("validation_split") or 0)
    validation: tuple[Any, Any] | None = None
    if call.get("validation_data") is not None:
        validation = _features_and_targets(call.get("validation_data"), None)
    elif split:
        # Keras's own split (train_validation_split): the last share of the rows validates.
        rows = datasets.describe(x).samples
        if rows is None:
            return  # not arrays: the core could not describe either part anyway
        at = math.floor(rows * (1.0 - split))
        validation = (_rows(x, at, rows), _rows(y, at, rows))
        x, y = _rows(x, 0, at), _rows(y, 0, at)
    sink.log_dataset(x, targets=y, context="train")
    if validation is not None:
        sink.log_dataset(validation[0], targets=validation[1], context="validation")


def _features_and_targets(x: Any, y: Any) -> tuple[Any, Any]:
    """``(x, y)`` from ``fit``/``evaluate`` arguments or a ``validation_data`` tuple."""
    if y is None and isinstance(x, (tuple, list)) and 2 <= len(x) <= 3 and not _is_array_like(x):
        return x[0], x[1]  # (x, y) or (x, y, sample_weight)
    return x, y


def _rows(value: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of an array (a view for numpy), or ``value`` when it is not one."""
    if isinstance(value, dict):
        return {key: _rows(item, start, stop) for key, item in value.items()}
    if _is_array_like(value) and hasattr(value, "__getitem__"):
        return value[start:stop]
    return value


def _signature(model: Any, example: Any = None) -> dict[str, Any] | None:
    """An MLflow tensor signature as plain data: the model's own, else the data's inputs.

    A subclassed model has no symbolic inputs or outputs; its signature then describes
    the inputs from the example rows of the training data, without outputs.
    """
    inputs = _keras_tensors(model, "inputs")
    outputs = _keras_tensors(model, "outputs")
    if inputs and outputs:
        return {"inputs": _tensor_specs(inputs), "outputs": _tensor_specs(outputs)}
    if example is None or isinstance(example, dict):
        return None
    dims = [-1, *(int(d) for d in tuple(example.shape)[1:])]
    dtype = str(example.dtype)
    return {"inputs": [{"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": dims}}]}


_EXAMPLE_ROWS = 5


def _input_example(call: Call) -> Any:
    """A copy of the first rows of the features ``fit`` trained on, or ``None``.

    Taken from arrays (and dicts of them) as passed, or from the first batch a generator
    gave Keras; a ``tf.data`` pipeline or a ``PyDataset`` is not read again for it.
    """
    callback = call.state.get("callback")
    watch = getattr(getattr(callback, "_settings", None), "first_item", None)
    x = call.get("x")
    if watch is not None:
        item = watch.item
        x = item[0] if isinstance(item, tuple) and item else item
    return _head(x, _EXAMPLE_ROWS)


def _head(x: Any, rows: int) -> Any:
    import numpy as np

    if isinstance(x, dict):
        heads = {str(k): _head(v, rows) for k, v in x.items()}
        return None if any(v is None for v in heads.values()) else heads
    if not _is_array_like(x) or not hasattr(x, "__getitem__"):
        return None
    try:
        return np.array(x[:rows])  # a copy: the user may change x once fit returned
    except Exception:  # an array type that cannot be sliced or converted
        return None


def _keras_tensors(model: Any, attr: str) -> list[Any] | None:
    try:
        value = getattr(model, attr, None)
    except (AttributeError, ValueError):  # subclassed models have no symbolic inputs
        return None
    if value is None:
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, (list, tuple)):
        value = [value]
    return list(value)


def _tensor_specs(tensors: list[Any]) -> list[dict[str, Any]]:
    specs = []
    named = len(tensors) > 1
    for tensor in tensors:
        dims = [-1 if d is None else int(d) for d in tuple(tensor.shape)]
        dtype = tensor.dtype
        spec: dict[str, Any] = {
            "type": "tensor",
            "tensor-spec": {"dtype": str(getattr(dtype, "name", dtype)), "shape": dims},
        }
        name = getattr(tensor, "name", None)
        if named and name:
            spec["name"] = str(name).split(":")[0]
        specs.append(spec)
    return specs


# evaluate ------------------------------------------------------------------------------


def before_evaluate(call: Call) -> None:
    if cast(KerasOptions, call.options).log_datasets:
        x, y = _features_and_targets(call.get("x"), call.get("y"))
        _sink(call).log_dataset(x, targets=y, context="eval")
    given = call.get("callbacks")
    if _is_callback_list(given):
        return
    callbacks = _callbacks_list(given)
    callback = eval_callback_class(flavor_of(call.instance).package)()
    call.state["eval_callback"] = callback
    call.replace("callbacks", [*callbacks, callback])


def after_evaluate(call: Call, result: Any) -> None:
    # Values go to the sink as they are: it converts the scalars and reports (by name)
    # a result that is not one, e.g. the per-class array of F1Score(average=None).
    results: dict[str, Any] | None = None
    if isinstance(result, dict):
        results = dict(result)
    else:
        callback = call.state.get("eval_callback")
        results = None if callback is None else callback.results
    if results:
        # Linked to the model the run's fit logged, as measured on the eval dataset: they
        # show on the model's page.
        dataset = "eval" if cast(KerasOptions, call.options).log_datasets else None
        _sink(call).log_model_metrics({f"eval_{k}": v for k, v in results.items()}, dataset=dataset)


# The plugin ------------------------------------------------------------------------------


def _patches(module: str) -> list[Patch]:
    return [
        Patch(
            target=f"{module}:Model.fit",
            capture=_FIT_CAPTURE,
            before=before_fit,
            after=after_fit,
            owns_run=True,
            optional=True,
        ),
        Patch(
            target=f"{module}:Model.evaluate",
            before=before_evaluate,
            after=after_evaluate,
            owns_run=True,
            reuse_instance_run=True,
            optional=True,
        ),
    ]


class KerasPlugin(Plugin):
    """Autologging for Keras 3, ``tf.keras`` 2.x and ``tf_keras``."""

    name = "keras"
    requires = (("keras>=2.15", "tf-keras>=2.15"),)
    framework = "keras"
    options_type = KerasOptions
    patches = (
        *_patches("keras.src.models.model"),
        *_patches("keras.src.engine.training"),
        *_patches("tf_keras.src.engine.training"),
    )

    def is_chief(self) -> bool:
        # Whether this process logs Keras: not on a non-chief worker, and not where
        # MLflow's own Keras autologging is on (mlflow.keras.autolog() for Keras 3,
        # mlflow.tensorflow.autolog() for tf.keras, or both through mlflow.autolog()),
        # which logs the same fit: one run, one autologger (docs/plugins/keras.md).
        return distributed.is_chief() and not steps_aside_for_mlflow(
            self.name, "Keras", _MLFLOW_INTEGRATIONS
        )
