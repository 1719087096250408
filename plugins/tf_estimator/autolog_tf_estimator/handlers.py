"""What the plugin does around each patched Estimator entry point.

Each function here is a ``before``/``after``/``on_error`` hook of one :class:`autolog.Patch`
(see :mod:`autolog_tf_estimator.plugin`). They receive an :class:`autolog.Call` and log only
through ``call.sink``; the core has already decided the run, captured the declared
arguments and will flush and end the run afterwards.

- ``train``: params, the loss hook added to ``hooks``, then scalar summaries, the final
  checkpoint and (optionally) the event files.
- ``evaluate``: the returned metrics as ``eval_<name>`` at step = global step.
- ``export_saved_model`` (and its siblings): the exported SavedModel, as the run's
  tensorflow-flavor MLflow model, with the first rows the last ``train`` read as its input
  example when they fit the serving signature (:mod:`autolog_tf_estimator.examples`).
- ``Estimator._call_model_fn``: only inside the calls above; when ``train`` builds its
  graph, the features handed to the ``model_fn`` are kept for that example.
- ``train_and_evaluate``: the specs as params; the ``train``/``evaluate``/export calls it
  makes join its run and log themselves.
"""

from __future__ import annotations

import numbers
import time
from typing import Any

from autolog.plugin import Call, RunSink
from autolog_tf_estimator import artifacts, examples
from autolog_tf_estimator.hooks import LOSS_METRIC, make_loss_hook
from autolog_tf_estimator.options import EstimatorOptions
from autolog_tf_estimator.params import estimator_params, format_value
from autolog_tf_estimator.summaries import EventTail, flush_cached_writer

__all__ = [
    "EVAL_PREFIX",
    "SAVED_MODEL_TAG",
    "after_evaluate",
    "after_export",
    "after_train",
    "before_evaluate",
    "before_export",
    "before_model_fn",
    "before_train",
    "before_train_and_evaluate",
    "eval_metric_prefix",
    "loss_every_n_steps",
    "on_train_error",
]

EVAL_PREFIX = "eval"
SAVED_MODEL_TAG = "autolog.tf_estimator.saved_model"
CHECKPOINT_TAG = "autolog.tf_estimator.checkpoint"

# During training, new summaries are picked up at most this often: the event writer only
# flushes every 120 s by default, so polling faster would mostly find nothing.
LIVE_SUMMARY_INTERVAL_SECS = 30.0
_DEFAULT_LOSS_EVERY_N_STEPS = 100


# train ---------------------------------------------------------------------------------


def before_train(call: Call) -> None:
    sink = _sink(call)
    estimator = call.instance
    options = _options(call)
    sink.log_params(estimator_params(estimator))
    tail = EventTail(estimator.model_dir) if options.log_summaries else None
    every = loss_every_n_steps(options, getattr(estimator, "config", None))
    call.state["tail"] = tail
    call.state["loss_hook"] = every > 0
    # The model's input example: the first step's rows, for an export to come.
    sample = examples.arm(estimator) if options.log_models else None
    if every > 0 or sample is not None:
        live = _LiveSummaries(sink, tail) if tail is not None and every > 0 else None
        hook = make_loss_hook(
            sink,
            every,
            live,
            on_end=None if live is None else live.drain,
            steps=call.get("steps"),
            max_steps=call.get("max_steps"),
            sample=sample,
        )
        # A new list: the caller's own list (or tuple) is never touched.
        call.replace("hooks", [*(call.get("hooks") or ()), hook])


def after_train(call: Call, result: Any) -> None:
    sink = _sink(call)
    estimator = call.instance
    options = _options(call)
    examples.disarm(estimator)
    _drain_summaries(call)
    if options.log_models and options.log_checkpoint:
        prefix = artifacts.log_checkpoint(sink, estimator.model_dir)
        if prefix is not None:
            sink.set_tag(CHECKPOINT_TAG, f"{artifacts.CHECKPOINT_ARTIFACT_PATH}/{prefix}")
    if options.log_tensorboard:
        artifacts.log_event_files(sink, estimator.model_dir)


def on_train_error(call: Call, exc: BaseException) -> None:
    # What training wrote before it failed is what explains the failure. Estimator's
    # summary writer flushes only when training ends well: flush it before reading.
    options = _options(call)
    examples.disarm(call.instance)
    if call.state.get("tail") is not None or options.log_tensorboard:
        flush_cached_writer(call.instance.model_dir)
    _drain_summaries(call)
    if options.log_tensorboard:
        artifacts.log_event_files(_sink(call), call.instance.model_dir)


def loss_every_n_steps(options: EstimatorOptions, config: Any) -> int:
    """The loss cadence: the option, else the estimator's own ``log_step_count_steps``."""
    if options.log_every_n_steps is not None:
        return int(options.log_every_n_steps)
    configured = getattr(config, "log_step_count_steps", None)
    if isinstance(configured, int) and configured > 0:
        return configured
    return _DEFAULT_LOSS_EVERY_N_STEPS


def before_model_fn(call: Call) -> None:
    # Graph building of a train (evaluate and export build graphs too: not their features).
    if call.get("mode") == "train":
        examples.watch(call.instance, call.get("features"))


class _LiveSummaries:
    """Called by the loss hook after it logs: forwards new summaries, at most every 30 s.

    `drain` forwards the rest when the session ends: the run's last values then travel
    while Estimator closes its session, and ``after_train`` finds little left to read.
    """

    def __init__(self, sink: RunSink, tail: EventTail) -> None:
        self._sink = sink
        self._tail = tail
        self._next = time.monotonic() + LIVE_SUMMARY_INTERVAL_SECS

    def __call__(self, step: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + LIVE_SUMMARY_INTERVAL_SECS
        _log_scalars(self._sink, self._tail, skip_loss=True)

    def drain(self) -> None:
        _log_scalars(self._sink, self._tail, skip_loss=True)


def _drain_summaries(call: Call) -> None:
    tail = call.state.get("tail")
    if tail is not None:
        _log_scalars(_sink(call), tail, skip_loss=bool(call.state.get("loss_hook")))


def _log_scalars(sink: RunSink, tail: EventTail, *, skip_loss: bool) -> None:
    for scalar in tail.poll():
        # The loss hook already logs "loss" on the same steps (see hooks.py).
        if skip_loss and scalar.tag == LOSS_METRIC:
            continue
        sink.log_metric(scalar.tag, scalar.value, step=scalar.step)


# evaluate ------------------------------------------------------------------------------


def before_evaluate(call: Call) -> None:
    # Same values as the train run it may join; they matter for an evaluate-only run.
    _sink(call).log_params(estimator_params(call.instance))


def after_evaluate(call: Call, result: Any) -> None:
    if not isinstance(result, dict):
        return
    step: Any = result.get("global_step")
    prefix = eval_metric_prefix(call.get("name"))
    metrics = {
        f"{prefix}_{key}": float(value)
        for key, value in result.items()
        if key != "global_step" and _is_scalar_number(value)
    }
    # Linked to the run's model when it has one already (an export before this evaluate);
    # a later export links the run's final values itself.
    _sink(call).log_model_metrics(metrics, step=int(step) if _is_scalar_number(step) else None)


def eval_metric_prefix(name: str | None) -> str:
    """``eval`` or, for ``evaluate(name="holdout")``, ``eval_holdout``: Estimator's eval dir."""
    return f"{EVAL_PREFIX}_{name}" if name else EVAL_PREFIX


def _is_scalar_number(value: Any) -> bool:
    if isinstance(value, numbers.Real):
        return True
    shape = getattr(value, "shape", None)
    return shape == () and getattr(getattr(value, "dtype", None), "kind", "") in "biuf"


# export ----------------------------------------------------------------------------------


def before_export(call: Call) -> None:
    _sink(call).log_params(estimator_params(call.instance))


def after_export(call: Call, result: Any) -> None:
    if not _options(call).log_models or not result:
        return
    sink = _sink(call)
    version = artifacts.log_saved_model(sink, result, rows=examples.rows_for(call.instance))
    sink.set_tag(SAVED_MODEL_TAG, version)


# train_and_evaluate ------------------------------------------------------------------------


def before_train_and_evaluate(call: Call) -> None:
    sink = _sink(call)
    estimator = call.get("estimator")
    params: dict[str, Any] = {} if estimator is None else estimator_params(estimator)
    train_spec = call.get("train_spec")
    eval_spec = call.get("eval_spec")
    if train_spec is not None:
        params["max_steps"] = getattr(train_spec, "max_steps", None)
    if eval_spec is not None:
        params.update(
            {
                "eval_steps": getattr(eval_spec, "steps", None),
                "eval_name": getattr(eval_spec, "name", None),
                "eval_throttle_secs": getattr(eval_spec, "throttle_secs", None),
                "eval_start_delay_secs": getattr(eval_spec, "start_delay_secs", None),
                "exporters": format_value(
                    [getattr(e, "name", type(e).__name__) for e in eval_spec.exporters or ()]
                ),
            }
        )
    sink.log_params(params)


# helpers -------------------------------------------------------------------------------


def _sink(call: Call) -> RunSink:
    # The core only calls hooks for a call that logs, so there always is a sink.
    assert call.sink is not None
    return call.sink


def _options(call: Call) -> EstimatorOptions:
    options = call.options
    if isinstance(options, EstimatorOptions):
        return options
    return EstimatorOptions(**{k: getattr(options, k) for k in ("log_every_n_steps", "log_models")})
