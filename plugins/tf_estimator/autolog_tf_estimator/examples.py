"""The exported model's input example: the first rows of features a ``train`` trained on.

An Estimator's training data comes out of the user's ``input_fn`` inside TensorFlow's
graph, so it is never read a second time for an example (that could consume a one-shot
input or repeat a pipeline's side effects). The rows are taken from the batch the
training's *first* step consumed, in the same ``session.run`` as that step:

1. ``before_train`` calls `arm` for the estimator (only with ``log_models`` on);
2. ``Estimator._call_model_fn`` is patched (a patch that only runs inside the plugin's own
   calls): when training builds its graph, `watch` keeps the ``features`` handed to the
   ``model_fn``, the tensors the training's input produces;
3. the train hook's ``begin`` (see :mod:`autolog_tf_estimator.hooks`) asks `take_fetches`
   for a slice of the first `MAX_ROWS` rows of each dense feature (``begin`` is where a
   ``SessionRunHook`` may add ops; nothing runs them but that one fetch), adds them to the
   first step's fetches and hands the values to `FeatureSample.record`;
4. an export calls `input_example`, which returns the rows when they fit the exported
   serving signature: same input names, dtype and shape, as a raw serving input receiver
   (``build_raw_serving_input_receiver_fn``) exports.

The rows stay in memory with the estimator object (a weak reference: nothing is kept
once the estimator is gone); the first step of its next ``train`` replaces them. Anything
that cannot be described cheaply (sparse or ragged features, strings, a non-tensor) is
left out, with a debug line; whatever fails, training goes on.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_ROWS",
    "SINGLE_FEATURE_NAME",
    "FeatureSample",
    "arm",
    "disarm",
    "input_example",
    "rows_for",
    "watch",
]

_log = logging.getLogger(__name__)

MAX_ROWS = 5
# What Estimator names a features tensor that is not a dict, in training and export alike.
SINGLE_FEATURE_NAME = "feature"

_samples: weakref.WeakKeyDictionary[Any, FeatureSample] = weakref.WeakKeyDictionary()


class FeatureSample:
    """One estimator's sample: the features of the training being built, then its rows."""

    def __init__(self) -> None:
        self.armed = False
        self.features: Any = None  # graph tensors: dropped once the first step is set up
        self.rows: dict[str, Any] | None = None

    def take_fetches(self) -> dict[str, Any] | None:
        """Slices of the first rows of each dense feature, to fetch with the first step.

        Called from the hook's ``begin``, with the training's graph as default graph. The
        features are let go of here: the sample never keeps the graph alive.
        """
        features, self.features = self.features, None
        if features is None:
            return None
        import tensorflow as tf

        if not isinstance(features, Mapping):
            features = {SINGLE_FEATURE_NAME: features}
        losses = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.LOSSES)
        if not losses:
            return None
        consumed = _ancestors(losses[-1].op)
        fetches = {}
        with tf.compat.v1.name_scope("autolog_input_example"):
            for name, tensor in features.items():
                reason = _unsupported(tf, tensor)
                if reason is None and getattr(tensor, "op", None) not in consumed:
                    # Fetching it could run input ops the step does not (read more data).
                    reason = "not computed by the training step"
                if reason is not None:
                    _log.debug(
                        "autolog: feature %r left out of the input example: %s", name, reason
                    )
                    continue
                fetches[str(name)] = tensor[:MAX_ROWS]
        return fetches or None

    def record(self, values: Mapping[str, Any]) -> None:
        """Keep the first step's rows (numpy arrays; a step's features have equal rows)."""
        import numpy as np

        rows = {name: np.asarray(value) for name, value in values.items()}
        if len({len(value) for value in rows.values()}) != 1:
            _log.debug("autolog: features of different row counts: no input example")
            return
        self.rows = rows


def arm(estimator: Any) -> FeatureSample | None:
    """Have the next training graph of ``estimator`` record its features; its sample."""
    # Called on the thread that trains (one train per estimator at a time): no lock.
    try:
        sample = _samples.get(estimator)
        if sample is None:
            sample = _samples[estimator] = FeatureSample()
    except TypeError:  # an estimator that cannot be weakly referenced
        return None
    sample.armed = True
    sample.features = None
    return sample


def watch(estimator: Any, features: Any) -> None:
    """``_call_model_fn`` in TRAIN mode: keep the features if a training is armed for them."""
    try:
        sample = _samples.get(estimator)
    except TypeError:
        return
    if sample is not None and sample.armed:
        # The first model_fn call of the training (a multi-replica strategy calls it once
        # per replica): one batch is enough.
        sample.armed = False
        sample.features = features


def disarm(estimator: Any) -> None:
    """The training is over: drop what is left of its graph (the rows stay)."""
    try:
        sample = _samples.get(estimator)
    except TypeError:
        return
    if sample is not None:
        sample.armed = False
        sample.features = None


def rows_for(estimator: Any) -> dict[str, Any] | None:
    """The rows the last training of ``estimator`` started with, or ``None``."""
    try:
        sample = _samples.get(estimator)
    except TypeError:
        return None
    return None if sample is None else sample.rows


def input_example(
    rows: Mapping[str, Any] | None, signature: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """``rows`` keyed by the serving signature's inputs, or ``None`` when they do not fit.

    They fit when every input of the signature is a training feature of the same dtype and
    shape (batch dimension aside); training features the signature does not take (a weight
    column, say) are left out. A parsing receiver's single ``examples`` string input does
    not fit: no example (a debug line says why).
    """
    if not rows or not signature:
        return None
    example = {}
    for spec in signature.get("inputs") or ():
        name = spec.get("name")
        tensor = spec.get("tensor-spec") or {}
        value = rows.get(name)
        if value is None:
            _log.debug(
                "autolog: no input example: serving input %r is not a training feature "
                "(features: %s)",
                name,
                sorted(rows),
            )
            return None
        if str(value.dtype) != tensor.get("dtype"):
            _log.debug(
                "autolog: no input example: serving input %r is %s, training fed %s",
                name,
                tensor.get("dtype"),
                value.dtype,
            )
            return None
        shape = list(tensor.get("shape") or ())
        if len(shape) != value.ndim or any(
            want not in (-1, got) for want, got in zip(shape[1:], value.shape[1:], strict=True)
        ):
            _log.debug(
                "autolog: no input example: serving input %r has shape %s, training fed %s",
                name,
                shape,
                list(value.shape),
            )
            return None
        example[name] = value
    return example or None


def _ancestors(op: Any) -> set[Any]:
    """Every op ``op`` depends on (data and control inputs), itself included."""
    seen = {op}
    stack = [op]
    while stack:
        current = stack.pop()
        for parent in (*(t.op for t in current.inputs), *current.control_inputs):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def _unsupported(tf: Any, tensor: Any) -> str | None:
    """Why ``tensor`` is not sampled, or ``None`` when it is a dense numeric tensor of rank >= 1."""
    if isinstance(tensor, tf.sparse.SparseTensor):
        return "sparse"
    if isinstance(tensor, tf.RaggedTensor):
        return "ragged"
    if not isinstance(tensor, tf.Tensor):
        return f"a {type(tensor).__name__}, not a tensor"
    if tensor.dtype == tf.string or not (
        tensor.dtype.is_floating or tensor.dtype.is_integer or tensor.dtype.is_bool
    ):
        return f"dtype {tensor.dtype.name}"
    if tensor.shape.rank is None or tensor.shape.rank < 1:
        return "no batch dimension"
    return None
