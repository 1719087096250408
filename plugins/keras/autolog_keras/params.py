"""What a compiled model says about itself: structure, optimizer, loss, metrics, summary.

Everything here reads Python attributes of the model; nothing touches a device except
``count_params``, which only multiplies shapes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "SUMMARY_TAG_LIMIT",
    "compile_params",
    "early_stopping_params",
    "optimizer_params",
    "structure_params",
    "summary_tag",
    "summary_text",
]

# MLflow rejects tag values longer than this (mlflow.utils.validation.MAX_TAG_VAL_LENGTH).
SUMMARY_TAG_LIMIT = 8000
_TRUNCATION_NOTE = "\n... [truncated: the full summary is the artifact model_summary.txt]"

_Scalar = (str, int, float, bool)
_Containers = (Mapping, list, tuple, set, frozenset)


def optimizer_params(optimizer: Any) -> dict[str, Any]:
    """``optimizer_class`` plus every config value as ``optimizer_<key>``.

    The names are those of MLflow's own Keras autologging (``mlflow.keras.autolog``), so
    runs made by either compare side by side: ``optimizer_name`` is the optimizer's name
    from its config (Keras 3: ``adam``, ``adam_1``, ...), ``optimizer_learning_rate`` its
    rate. ``optimizer_class`` (``Adam``) is autolog's own. A nested serialized object (a
    learning-rate schedule, the inner optimizer of a ``LossScaleOptimizer``) becomes its
    class name under its key and its own config under ``optimizer_<key>_<subkey>``.
    """
    if optimizer is None:
        return {}
    params: dict[str, Any] = {"optimizer_class": type(optimizer).__name__}
    try:
        config = optimizer.get_config()
    except (NotImplementedError, AttributeError):
        name = getattr(optimizer, "name", None)
        if isinstance(name, str):
            params["optimizer_name"] = name
        return params
    params.update(_flatten("optimizer", config, skip=frozenset()))
    return params


def _flatten(prefix: str, config: Mapping[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in skip:
            continue
        name = f"{prefix}_{key}"
        if getattr(value, "shape", None) == () and hasattr(value, "item"):
            value = value.item()  # a numpy scalar (Keras 2 configs hold np.float32)
        if isinstance(value, Mapping) and "class_name" in value:
            out[name] = value["class_name"]
            inner = value.get("config")
            if isinstance(inner, Mapping):
                out.update(_flatten(name, inner, skip=frozenset({"name"})))
        elif isinstance(value, float):
            out[name] = _short_float(value)
        elif value is None or isinstance(value, _Scalar + _Containers):
            # Containers go to the sink as they are: the core redacts credential-named keys
            # and URL passwords at any depth, then logs their str() (the same text as a
            # str() here, when there is nothing to hide).
            out[name] = value
        else:
            out[name] = str(value)
    return out


def _short_float(value: float) -> float:
    """The shortest float that names the same float32 (0.001, not 0.0010000000474974513).

    Optimizer hyperparameters live in float32 variables, so their configs hold widened
    float32 values; a param should read as the user typed it.
    """
    if not math.isfinite(value):
        return value
    as_f32 = _f32(value)
    if as_f32 != value:
        return value
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if _f32(candidate) == as_f32:
            return candidate
    return value


def _f32(value: float) -> float:
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        return math.nan


def structure_params(model: Any) -> dict[str, Any]:
    """Layer count and parameter counts of a built model."""
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return {
        "num_layers": len(model.layers),
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
    }


def _count(weights: Iterable[Any]) -> int:
    total = 0
    for weight in weights:
        shape = [int(d) for d in tuple(weight.shape)]
        total += math.prod(shape)
    return total


def compile_params(model: Any) -> dict[str, Any]:
    """The loss name(s) and compiled metric names, as given to ``compile``."""
    config = _compile_config(model)
    params: dict[str, Any] = {}
    loss = config.get("loss", getattr(model, "loss", None))
    if loss is not None:
        params["loss"] = _names(loss)
    metrics = [m for m in (config.get("metrics"), config.get("weighted_metrics")) if m]
    if metrics:
        params["metrics"] = ", ".join(_names(m) for m in metrics)
    loss_weights = config.get("loss_weights")
    if loss_weights is not None:
        params["loss_weights"] = str(loss_weights)
    return params


def _compile_config(model: Any) -> Mapping[str, Any]:
    holder = getattr(model, "_compile_config", None)
    config = getattr(holder, "config", None)
    return config if isinstance(config, Mapping) else {}


def _names(spec: Any) -> str:
    """A readable name for a loss/metric spec: a string, object, function or nesting."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return ", ".join(f"{k}={_names(v)}" for k, v in spec.items())
    if isinstance(spec, (list, tuple)):
        return ", ".join(_names(s) for s in spec if s is not None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name:
        return name
    return str(getattr(spec, "__name__", type(spec).__name__))


def early_stopping_params(callback: Any) -> dict[str, Any]:
    """The settings of an ``EarlyStopping`` callback as ``early_stopping_<name>``.

    Keras 2 keeps no ``mode``: it resolves it (``"auto"`` included) into ``monitor_op``,
    ``np.less`` or ``np.greater``, which gives ``"min"`` or ``"max"``.
    """
    params: dict[str, Any] = {}
    for attr in (
        "monitor",
        "patience",
        "min_delta",
        "mode",
        "baseline",
        "restore_best_weights",
        "start_from_epoch",
    ):
        if hasattr(callback, attr):
            value = getattr(callback, attr)
            if attr == "min_delta" and isinstance(value, (int, float)):
                # Keras flips the sign for "min" monitors; the user gave the magnitude.
                value = abs(value)
            params[f"early_stopping_{attr}"] = value
    if "early_stopping_mode" not in params:
        mode = _mode_of(getattr(callback, "monitor_op", None))
        if mode is not None:
            params["early_stopping_mode"] = mode
    return params


def _mode_of(monitor_op: Any) -> str | None:
    """``"min"`` for ``np.less``, ``"max"`` for ``np.greater`` (Keras 2's ``monitor_op``)."""
    name = getattr(monitor_op, "__name__", None)
    if name in ("less", "less_equal"):
        return "min"
    if name in ("greater", "greater_equal"):
        return "max"
    return None


def summary_text(model: Any) -> str:
    """``model.summary()`` as text (Keras 3 prints one rich block, Keras 2 line by line)."""
    parts: list[str] = []

    def collect(text: Any = "", *_args: Any, **_kwargs: Any) -> None:
        parts.append(str(text))

    model.summary(print_fn=collect)
    return "\n".join(parts).rstrip() + "\n"


def summary_tag(text: str, limit: int = SUMMARY_TAG_LIMIT) -> str:
    """``text`` cut to fit an MLflow tag, with a note saying so when it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - len(_TRUNCATION_NOTE)] + _TRUNCATION_NOTE
