"""What an estimator was configured with, as MLflow params.

Three sources, all read without running anything:

- the estimator and its ``RunConfig`` (class, ``model_dir``, checkpoint/summary cadence, seed);
- the ``params`` dict a custom ``model_fn`` receives, flattened (``{"opt": {"lr": 0.1}}``
  becomes ``opt.lr``);
- for canned estimators (``DNNClassifier``, ``LinearRegressor``, ...), the constructor
  arguments. Estimator keeps no public record of them: each canned class builds its
  ``model_fn`` as a closure over them, so they are read from that closure's cells by name
  (``hidden_units``, ``dropout``, ``optimizer``, ``feature_columns``, ``head``, ...). A
  user's own ``model_fn`` closure is never read: its free variables are not parameters.

String optimizers (``"Adagrad"``) get the learning rate the canned estimator will actually
use, which differs per family and is not the optimizer's own default; see
:func:`_canned_learning_rate`.
"""

from __future__ import annotations

import json
import logging
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "AUTOLOG_PARAM_NAMES",
    "canned_params",
    "custom_params",
    "estimator_class_name",
    "estimator_params",
    "format_value",
    "run_config_params",
]

_log = logging.getLogger(__name__)

_CANNED_PACKAGE = "tensorflow_estimator.python.estimator.canned."
_MAX_VALUE_CHARS = 500
# Nesting looked through in a params value; deeper (or cyclic) parts are left to the core.
_MAX_DEPTH = 32

# RunConfig fields that decide what a run produces and how it can be reproduced.
_RUN_CONFIG_FIELDS = (
    "save_checkpoints_steps",
    "save_checkpoints_secs",
    "keep_checkpoint_max",
    "keep_checkpoint_every_n_hours",
    "save_summary_steps",
    "log_step_count_steps",
    "tf_random_seed",
)

# Names autolog logs itself; a custom params key equal to one of them is logged as
# "params.<key>" so the two never fight over one MLflow param.
AUTOLOG_PARAM_NAMES = frozenset(
    {
        "estimator_class",
        "model_dir",
        "steps",
        "max_steps",
        "train_distribute",
        "eval_distribute",
        "warm_start_from",
        # train_and_evaluate's own (see handlers.before_train_and_evaluate)
        "eval_steps",
        "eval_name",
        "eval_throttle_secs",
        "eval_start_delay_secs",
        "exporters",
        *_RUN_CONFIG_FIELDS,
    }
)


def estimator_params(estimator: Any) -> dict[str, Any]:
    """Every param this module knows how to read from ``estimator``."""
    params: dict[str, Any] = {
        "estimator_class": estimator_class_name(type(estimator)),
        "model_dir": getattr(estimator, "model_dir", None),
    }
    config = getattr(estimator, "config", None)
    if config is not None:
        params.update(run_config_params(config))
    warm_start = getattr(estimator, "_warm_start_settings", None)
    if warm_start is not None:
        params["warm_start_from"] = getattr(warm_start, "ckpt_to_initialize_from", None)
    if is_canned(estimator):
        params.update(canned_params(estimator))
    else:
        params.update(custom_params(_safe_params(estimator)))
    return params


def estimator_class_name(cls: type) -> str:
    """The public name (``LinearClassifier``, not ``LinearClassifierV2``) when it has one."""
    # The API name is declared on the class itself; a user's subclass inherits the
    # attribute but not the name, so only the class's own __dict__ counts.
    for attr in ("_estimator_api_names", "_estimator_api_names_v1"):
        names = cls.__dict__.get(attr)
        if names:
            return str(next(iter(names))).rpartition(".")[2]
    return cls.__name__


def run_config_params(config: Any) -> dict[str, Any]:
    params = {name: getattr(config, name, None) for name in _RUN_CONFIG_FIELDS}
    for name in ("train_distribute", "eval_distribute"):
        strategy = getattr(config, name, None)
        if strategy is not None:
            params[name] = type(strategy).__name__
    return params


def custom_params(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``params`` of a custom ``model_fn``, flattened, formatted, clash-free."""
    flat: dict[str, Any] = {}
    for key, value in _flatten(given or {}, ""):
        name = f"params.{key}" if key in AUTOLOG_PARAM_NAMES else key
        if _holds_mapping(value):
            # A list of dicts (``[{"host": ..., "password": ...}]``) goes to the sink as a
            # structure: the core's redaction masks credential-named keys at any depth,
            # which it could not do in a string made here. The core stores its str().
            flat[name] = _structure(value)
        else:
            flat[name] = format_value(value)
    return flat


def is_canned(estimator: Any) -> bool:
    return _canned_class(type(estimator)) is not None


def canned_params(estimator: Any) -> dict[str, Any]:
    """The constructor arguments of a canned estimator, read from its model_fn closure."""
    canned = _canned_class(type(estimator))
    closure = _closure(getattr(estimator, "_model_fn", None))
    if canned is None or not closure:
        return {}
    family = canned.__module__[len(_CANNED_PACKAGE) :]
    v2 = any(c.__name__ == "EstimatorV2" for c in canned.__mro__)
    params: dict[str, Any] = {}
    for name, value in sorted(closure.items()):
        if name == "head":
            params.update(head_params(value))
        elif name.endswith("feature_columns"):
            params[name] = format_value(feature_column_names(value or ()))
        elif name.endswith("optimizer"):
            params.update(_optimizer_params(name, value, family, v2, closure))
        elif name.endswith("activation_fn"):
            params[name] = _callable_name(value)
        elif _is_plain(value):
            params[name] = format_value(value)
    return params


def head_params(head: Any) -> dict[str, Any]:
    """What a canned head says about the task: classes, label shape, weights, reduction."""
    params: dict[str, Any] = {"head": type(head).__name__}
    n_classes = getattr(head, "_n_classes", None)
    kind = type(head).__name__
    if n_classes is None and kind == "BinaryClassHead":
        n_classes = 2
    if n_classes is not None:
        params["n_classes"] = n_classes
    elif kind.endswith("RegressionHead"):
        params["label_dimension"] = getattr(head, "logits_dimension", None)
    vocabulary = getattr(head, "_label_vocabulary", None)
    if vocabulary is not None:
        params["label_vocabulary"] = format_value(list(vocabulary))
    weight = getattr(head, "_weight_column", None)
    if weight is not None:
        params["weight_column"] = getattr(weight, "name", weight)
    reduction = getattr(head, "_loss_reduction", None)
    if reduction is not None:
        params["loss_reduction"] = reduction
    return params


def feature_column_names(columns: Iterable[Any]) -> list[str]:
    return [str(getattr(column, "name", column)) for column in columns]


def format_value(value: Any) -> Any:
    """A value MLflow can store as a param, short and readable."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Number):
        return value.item() if hasattr(value, "item") else value
    if isinstance(value, (list, tuple)):
        try:
            text = json.dumps([_jsonable(v) for v in value])
        except (TypeError, ValueError):
            text = str(list(value))
        return _shorten(text)
    if callable(value):
        return _callable_name(value)
    return _shorten(str(value))


# Internals ---------------------------------------------------------------------------


def _canned_class(cls: type) -> type | None:
    for klass in cls.__mro__:
        if klass.__module__.startswith(_CANNED_PACKAGE):
            return klass
    return None


def _closure(model_fn: Any) -> dict[str, Any]:
    code = getattr(model_fn, "__code__", None)
    cells = getattr(model_fn, "__closure__", None)
    # Only the canned constructors' own local model_fn, never a wrapped user function.
    if code is None or not cells or ".__init__.<locals>." not in model_fn.__qualname__:
        return {}
    values = {}
    for name, cell in zip(code.co_freevars, cells, strict=False):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return values


def _optimizer_params(
    name: str, optimizer: Any, family: str, v2: bool, closure: Mapping[str, Any]
) -> dict[str, Any]:
    prefix = name[: -len("optimizer")]  # "", "dnn_" or "linear_"
    lr_name = f"{prefix}learning_rate"
    if isinstance(optimizer, str):
        params: dict[str, Any] = {name: optimizer}
        rate = _canned_learning_rate(optimizer, name, family, v2, closure)
        if rate is not None:
            params[lr_name] = rate
        return params
    if optimizer is None:
        return {}
    if not _is_optimizer(optimizer):
        # A factory (or something else): calling it would run user code outside the
        # training graph, so only its name is logged.
        return {name: _callable_name(optimizer) if callable(optimizer) else format_value(optimizer)}
    params = {name: type(optimizer).__name__}
    rate = _instance_learning_rate(optimizer)
    if rate is not None:
        params[lr_name] = rate
    return params


def _canned_learning_rate(
    optimizer: str, name: str, family: str, v2: bool, closure: Mapping[str, Any]
) -> Any:
    """The learning rate a canned estimator gives a string optimizer.

    Each family passes its own module constant to ``get_optimizer_instance[_v2]``; the V2
    DNN passes none (so the Keras class default applies) and the combined model's linear
    part scales with the number of feature columns. Building the optimizer the same way
    and reading its config is exact, and cheap: no variables exist until it is applied.
    """
    try:
        import importlib

        from tensorflow_estimator.python.estimator.canned import optimizers

        module = importlib.import_module(_CANNED_PACKAGE + family)
        rate: Any
        if family == "dnn_linear_combined":
            if name == "linear_optimizer":
                columns = closure.get("linear_feature_columns") or ()
                rate = module._linear_learning_rate(len(columns)) if columns else None
            else:
                rate = module._DNN_LEARNING_RATE
        elif family == "dnn" and v2:
            rate = None
        else:
            rate = getattr(module, "_LEARNING_RATE", None)
        if v2:
            built = optimizers.get_optimizer_instance_v2(optimizer, learning_rate=rate)
        else:
            built = optimizers.get_optimizer_instance(optimizer, learning_rate=rate)
        return _instance_learning_rate(built)
    except Exception as exc:  # a private layout that moved: leave the rate out
        _log.debug("no learning rate for canned %s optimizer %r: %s", family, optimizer, exc)
        return None


def _is_optimizer(value: Any) -> bool:
    return any(
        c.__name__ in ("Optimizer", "OptimizerV2") for c in getattr(type(value), "__mro__", ())
    )


def _instance_learning_rate(optimizer: Any) -> Any:
    rate: Any = None
    get_config = getattr(optimizer, "get_config", None)
    if callable(get_config):
        try:
            rate = get_config().get("learning_rate")
        except Exception:
            rate = None
    if rate is None:
        rate = getattr(optimizer, "_learning_rate", None)  # tf.compat.v1.train optimizers
    if isinstance(rate, Mapping):  # a serialized LearningRateSchedule
        return rate.get("class_name") or rate.get("config", {}).get("name")
    if isinstance(rate, numbers.Real):
        return float(rate)
    if rate is not None and hasattr(rate, "numpy"):
        try:
            return float(rate.numpy())
        except Exception:
            return type(rate).__name__
    return None if rate is None else type(rate).__name__


def _safe_params(estimator: Any) -> Mapping[str, Any]:
    try:
        params = estimator.params  # a deep copy, by Estimator's design
    except Exception:
        return {}
    return params if isinstance(params, Mapping) else {}


def _flatten(mapping: Mapping[str, Any], prefix: str) -> Iterable[tuple[str, Any]]:
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, str, numbers.Number)):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (bool, str, numbers.Number)) for v in value
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Number):
        return value.item() if hasattr(value, "item") else value
    name = getattr(value, "name", None)
    if isinstance(name, str):  # feature columns, optimizers, layers
        return name
    return str(value)


def _holds_mapping(value: Any, depth: int = 0) -> bool:
    """Whether a list or tuple has a mapping somewhere inside it."""
    if not isinstance(value, (list, tuple)):
        return False
    if depth >= _MAX_DEPTH:  # too deep (or cyclic) to look through: let the core decide
        return True
    return any(isinstance(v, Mapping) or _holds_mapping(v, depth + 1) for v in value)


def _structure(value: Any, depth: int = 0) -> Any:
    """``value`` with its mappings, lists and tuples kept, its other leaves made plain."""
    if depth >= _MAX_DEPTH:
        return value  # the core's redaction masks containers this deep
    if isinstance(value, Mapping):
        return {k: _structure(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_structure(v, depth + 1) for v in value]
    return _jsonable(value)


def _callable_name(value: Any) -> str:
    return str(getattr(value, "__name__", None) or type(value).__name__)


def _shorten(text: str) -> str:
    if len(text) <= _MAX_VALUE_CHARS:
        return text
    return text[: _MAX_VALUE_CHARS - 3] + "..."
