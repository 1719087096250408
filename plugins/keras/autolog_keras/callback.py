"""The Keras callbacks autolog adds to ``fit`` and ``evaluate``.

The classes subclass the ``Callback`` of the Keras the model belongs to, so they are
declared with `autolog.lazy_subclass`: built when first needed (:func:`fit_callback_class`),
once per Keras package; importing this module imports no framework.

Cost on the training thread is what matters here:

* Batch hooks exist only on the per-step class. Keras 2 calls batch hooks only when some
  callback defines them, so per-epoch logging adds no per-batch work at all.
* Per-step logging keeps no counter that needs a device read: the global step is the
  optimizer's step count read once at ``on_train_begin`` plus the batch index Keras passes.
  Values are converted to floats only on steps that are logged (Keras 2 hands tensors to a
  callback that declares ``_supports_tf_logs``; Keras 3 has already made them floats).
* Each hook hands one dict to the sink, which only enqueues.

Errors inside these hooks never reach the user's ``fit``: they are reported as autolog
warnings (raised under ``AUTOLOG_TESTING=1``) and training goes on.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from autolog import guard, lazy_subclass
from autolog_keras import params as model_params
from autolog_keras.checkpoints import Checkpointer, CheckpointPolicy
from autolog_keras.compat import KerasFlavor
from autolog_keras.datasets import FirstItem, describe_batch

__all__ = [
    "FitSettings",
    "eval_callback_class",
    "fit_callback_class",
    "is_autolog_callback",
]

PLUGIN = "keras"
_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(method: _F) -> _F:
    guarding = guard(PLUGIN, f"callback {method.__name__}")

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        with guarding:
            return method(self, *args, **kwargs)
        return None

    return guarded  # type: ignore[return-value]


@dataclass
class FitSettings:
    """Everything the fit callback needs, decided in the ``before`` hook."""

    sink: Any
    flavor: KerasFlavor
    every_n_steps: int | None = None
    checkpoint: CheckpointPolicy | None = None
    """Checkpoints to log (`autolog_keras.checkpoints`), or ``None``."""
    early_stopping: Sequence[Any] = field(default_factory=tuple)
    log_summary: bool = True
    first_item: FirstItem | None = None
    """Watches a generator ``x``: batch size and input description come from it."""
    log_datasets: bool = True


def _floats(logs: Mapping[str, Any] | None) -> tuple[dict[str, float], dict[str, Any]]:
    """The scalar entries of ``logs`` as floats, and the entries that are not scalars.

    A non-scalar entry (``F1Score(average=None)`` gives one value per class, other callbacks
    may put anything into the logs) is not a metric; the hooks hand it to the sink once per
    key anyway, so that the batching layer reports it as dropped instead of it vanishing.
    """
    if not logs:
        return {}, {}
    try:
        return {key: float(value) for key, value in logs.items()}, {}
    except (TypeError, ValueError):
        out: dict[str, float] = {}
        rejected: dict[str, Any] = {}
        for key, value in logs.items():
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                rejected[key] = value
        return out, rejected


class _Rejects:
    """Which non-scalar log keys were already handed to the sink (to be reported once)."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def first(self, rejected: Mapping[str, Any]) -> dict[str, Any]:
        new = {key: value for key, value in rejected.items() if key not in self.seen}
        self.seen.update(new)
        return new


def _to_float(value: Any) -> float:
    """A Python float from a variable, tensor or array (any backend, any strategy)."""
    to_numpy = getattr(value, "numpy", None)
    if callable(to_numpy):
        # Distributed (mirrored) variables read their local copy this way; np.asarray on
        # them fails.
        value = to_numpy()
    import numpy as np

    return float(np.asarray(value))


def _current_learning_rate(optimizer: Any) -> float | None:
    """The rate the next optimizer step will use (schedules evaluated at the step count)."""
    if optimizer is None:
        return None
    # A LossScaleOptimizer (Keras 2's LossScaleOptimizerV3 has no _learning_rate of its
    # own) steps with the schedule of the optimizer it wraps.
    for _ in range(8):
        inner = getattr(optimizer, "inner_optimizer", None)
        if inner is None or inner is optimizer:
            break
        optimizer = inner
    schedule: Any = getattr(optimizer, "_learning_rate", None)
    if _is_schedule(schedule):
        # Keras 2 exposes a variable refreshed only inside apply_gradients, one step stale.
        return _to_float(schedule(optimizer.iterations))
    lr = getattr(optimizer, "learning_rate", None)
    if lr is None:
        lr = getattr(optimizer, "lr", None)
    if lr is None:
        return None
    if _is_schedule(lr):
        lr = lr(optimizer.iterations)
    return _to_float(lr)


def _is_schedule(value: Any) -> bool:
    return (
        callable(value)
        and hasattr(value, "get_config")
        and not hasattr(value, "shape")
        and not hasattr(value, "numpy")
    )


def _optimizer_step(model: Any) -> int:
    """The optimizer's step count (the global step; continues across ``fit`` calls)."""
    iterations = getattr(getattr(model, "optimizer", None), "iterations", None)
    return 0 if iterations is None else int(_to_float(iterations))


def _steps_per_execution(model: Any) -> int:
    value = getattr(model, "steps_per_execution", None)
    if value is None:
        value = getattr(model, "_steps_per_execution", None)
    if value is None:
        return 1
    try:
        return max(1, int(_to_float(value)))
    except (TypeError, ValueError):
        return 1


class _FitHooks:
    """Per-epoch logging, model description, checkpoints and EarlyStopping results."""

    _autolog_keras = True
    model: Any  # set by Keras (an attribute or a property of its Callback base)

    def __init__(self, settings: FitSettings) -> None:
        super().__init__()
        self._settings = settings
        self._sink = settings.sink
        self._model_described = False
        self._epoch_started = 0.0
        self._epoch_lr: float | None = None
        self._epoch = 0
        policy = settings.checkpoint
        self._checkpointer = None if policy is None else Checkpointer(policy, settings.sink)
        self._input_described = settings.first_item is None
        self._rejects = _Rejects()

    # Keras hooks -----------------------------------------------------------------------

    @_guarded
    def on_train_begin(self, logs: Any = None) -> None:
        self._train_begin()
        if getattr(self.model, "built", False):
            self._describe_model()
        self._describe_input()

    @_guarded
    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch_started = time.perf_counter()
        self._epoch = int(epoch)
        self._epoch_lr = _current_learning_rate(getattr(self.model, "optimizer", None))

    @_guarded
    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        duration = time.perf_counter() - self._epoch_started
        metrics, rejected = _floats(logs)
        # What Keras reported, for a checkpoint's metrics file (MLflow's: the logs as they are).
        reported = dict(metrics) if self._checkpointer is not None else metrics
        if self._epoch_lr is not None and "learning_rate" not in metrics:
            metrics["learning_rate"] = self._epoch_lr
        metrics["epoch_duration"] = duration
        self._sink.log_metrics({**self._rejects.first(rejected), **metrics}, step=int(epoch))
        self._epoch_done(epoch)
        if not self._model_described:
            self._describe_model()  # Keras 2 builds subclassed models on the first batch
        if not self._input_described:
            self._describe_input()
        checkpointer = self._checkpointer
        if checkpointer is not None and checkpointer.policy.per_step is None:
            step = _optimizer_step(self.model)
            checkpointer.consider(self.model, int(epoch), step, reported)

    @_guarded
    def on_train_end(self, logs: Any = None) -> None:
        self._log_early_stopping()
        if self._checkpointer is not None:
            self._checkpointer.finish()

    # Parts -----------------------------------------------------------------------------

    def _train_begin(self) -> None:
        """Hook for the per-step subclass."""

    def _epoch_done(self, epoch: int) -> None:
        """Hook for the per-step subclass."""

    def _describe_model(self) -> None:
        self._model_described = True
        model = self.model
        self._sink.log_params(model_params.structure_params(model))
        if not self._settings.log_summary:
            return
        text = model_params.summary_text(model)
        self._sink.set_tag("model_summary", model_params.summary_tag(text))
        self._sink.log_text(text, "model_summary.txt")

    def _describe_input(self) -> None:
        """Batch size and shape of a generator ``x``, from the first item Keras pulled."""
        watch = self._settings.first_item
        if watch is None or not watch.seen:
            return
        self._input_described = True
        params: dict[str, Any] = {}
        if watch.batch_size is not None:
            params["batch_size"] = watch.batch_size
        if self._settings.log_datasets:
            params.update(describe_batch(watch.item).as_params("dataset_train"))
        if params:
            self._sink.log_params(params)

    def _log_early_stopping(self) -> None:
        restores_at_end = self._settings.flavor.major >= 3
        for callback in self._settings.early_stopping:
            stopped = int(getattr(callback, "stopped_epoch", 0) or 0)
            metrics: dict[str, float] = {}
            if stopped > 0:
                metrics["stopped_epoch"] = stopped
            restored = (
                getattr(callback, "restore_best_weights", False)
                and getattr(callback, "best_weights", None) is not None
                and (restores_at_end or stopped > 0)
            )
            best_epoch = getattr(callback, "best_epoch", None)
            if restored and best_epoch is not None:
                metrics["restored_epoch"] = int(best_epoch)
            if metrics:
                self._sink.log_metrics(metrics)


class _StepHooks(_FitHooks):
    """Adds batch metrics every ``every_n_steps`` optimizer steps, at the global step, and
    checkpoints every ``checkpoint_save_freq`` steps."""

    # Keras 2: hand us the raw tensors; we convert only on the steps we log.
    _supports_tf_logs = True
    # Keras 3 (JAX/torch): our batch hook only enqueues, so it may run off the loop thread.
    async_safe = True

    def __init__(self, settings: FitSettings) -> None:
        super().__init__(settings)
        self._every = settings.every_n_steps  # None: checkpoints only
        checkpointer = self._checkpointer
        self._checkpoint_every = None if checkpointer is None else checkpointer.policy.per_step
        if self._checkpoint_every is not None:
            # A checkpoint saves the model: it must happen between steps, on the loop's thread.
            self.async_safe = False
        self._spe = 1
        self._epoch_base = 0  # global step before the current epoch's first batch
        self._last_batch = -1

    def _train_begin(self) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        self._epoch_base = 0 if iterations is None else int(_to_float(iterations))
        self._spe = _steps_per_execution(self.model)

    def _epoch_done(self, epoch: int) -> None:
        self._epoch_base += self._last_batch + 1
        self._last_batch = -1

    @_guarded
    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if batch > self._last_batch:
            self._last_batch = batch
        step = self._epoch_base + batch + 1
        # With steps_per_execution=k Keras reports every k-th step: log when a multiple
        # of N fell inside the last k steps.
        every = self._every
        if every is not None and step % every < self._spe and logs:
            metrics, rejected = _floats(logs)
            batch: dict[str, Any] = {f"batch_{k}": v for k, v in metrics.items()}
            if rejected:
                batch.update(self._rejects.first({f"batch_{k}": v for k, v in rejected.items()}))
            self._sink.log_metrics(batch, step=step)
        every = self._checkpoint_every
        if every is not None and step % every < self._spe and self._checkpointer is not None:
            self._checkpointer.consider(self.model, self._epoch, step, _floats(logs)[0])


class _EvalHooks:
    """Keeps the final logs of an ``evaluate`` call, keyed by metric name.

    Non-scalar results are kept as they are, for the sink to report as dropped.
    """

    _autolog_keras = True

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, Any] | None = None

    @_guarded
    def on_test_end(self, logs: Any = None) -> None:
        scalars, rejected = _floats(logs)
        self.results = {**rejected, **scalars}


# Built on first use against the Callback of each Keras package (``keras``, ``tf_keras``),
# which this module never imports itself.
_PACKAGES = ("keras", "tf_keras")
_FIT_CLASSES = {
    (package, per_step): lazy_subclass(
        f"{package}.callbacks:Callback",
        _StepHooks if per_step else _FitHooks,
        name="AutologStepCallback" if per_step else "AutologCallback",
    )
    for package in _PACKAGES
    for per_step in (False, True)
}
_EVAL_CLASSES = {
    package: lazy_subclass(f"{package}.callbacks:Callback", _EvalHooks, name="AutologEvalCallback")
    for package in _PACKAGES
}


def fit_callback_class(package: str, per_step: bool) -> type:
    """The fit callback class for one Keras package (``keras`` or ``tf_keras``)."""
    return _FIT_CLASSES[package, per_step].resolve()


def eval_callback_class(package: str) -> type:
    """The evaluate callback class for one Keras package."""
    return _EVAL_CLASSES[package].resolve()


def is_autolog_callback(callback: Any) -> bool:
    return bool(getattr(type(callback), "_autolog_keras", False))
