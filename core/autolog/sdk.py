"""Helpers every plugin needs, none of which imports a framework or MLflow.

- `lazy_subclass`: a class defined against a framework base class that is imported only
  when the class is first used (a framework that accepts only subclasses of its own
  callback base, while a plugin module must not import the framework).
- `flatten_params`: a params mapping, or a list of ``(key, value)`` pairs, as the flat
  ``{str: str}`` MLflow stores, nested dicts joined with a separator.
- `log_dict`: a dict stored as a JSON or YAML artifact through `RunSink.log_text`.
- `add_callback`: the plugin's callback appended to the call's ``callbacks`` argument,
  in a new list (``None`` included), once.
- `log_history`: per-iteration values a framework kept (``{"loss": [...]}``) logged at
  their iteration as step, every n-th one.
- `snapshot`: a loader for `RunSink.log_model` that returns the model as it was when the
  hook ran, whatever the training code does to it afterwards.
"""

from __future__ import annotations

import importlib
import json
import pickle
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from autolog.plugin import Call, RunSink

__all__ = [
    "LazySubclass",
    "add_callback",
    "flatten_params",
    "lazy_subclass",
    "log_dict",
    "log_history",
    "snapshot",
]


class LazySubclass:
    """A subclass of a framework class, built the first time it is used.

    Made by `lazy_subclass`. Calling it builds the class if needed and instantiates it;
    `resolve` returns the class itself. ``isinstance(obj, lazy)`` works and never imports
    the framework: before the class is built nothing can be an instance of it.

    Attributes:
        base: the base class, as ``"module:Qualname"``.
        mixins: the classes that come before the base in the MRO (the plugin's code).
        name: the built class's ``__name__``.
    """

    def __init__(self, base: str, mixins: tuple[type, ...], name: str) -> None:
        self.base = base
        self.mixins = mixins
        self.name = name
        self._built: type | None = None
        self._lock = threading.Lock()

    def resolve(self) -> type:
        """The built class: ``type(name, (*mixins, Base), {})``, once per process.

        The first call imports the base's module; concurrent first calls build one class.
        """
        built = self._built
        if built is not None:
            return built
        with self._lock:
            if self._built is None:
                self._built = self._build()
            return self._built

    def _build(self) -> type:
        module_name, _, qualname = self.base.partition(":")
        base: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            base = getattr(base, part)
        if not isinstance(base, type):
            raise TypeError(f"lazy_subclass: {self.base} is {base!r}, not a class")
        namespace = {
            # Where the plugin defines it, so reprs and pickling by reference point there.
            "__module__": self.mixins[0].__module__ if self.mixins else __name__,
            "__qualname__": self.name,
        }
        return type(self.name, (*self.mixins, base), namespace)

    @property
    def built(self) -> bool:
        """Whether the class has been built (and so the base's module imported)."""
        return self._built is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """An instance of the built class: ``lazy(sink)`` is ``lazy.resolve()(sink)``."""
        return self.resolve()(*args, **kwargs)

    def __instancecheck__(self, obj: Any) -> bool:
        return self._built is not None and isinstance(obj, self._built)

    def __repr__(self) -> str:
        state = "built" if self.built else "not built yet"
        return f"<lazy subclass {self.name} of {self.base}, {state}>"


def lazy_subclass(base: str, *mixins: type, name: str) -> LazySubclass:
    """A class deriving from a framework's ``base``, which is imported only on first use.

    Some frameworks accept only subclasses of their own callback class (XGBoost's
    ``TrainingCallback``, Keras's ``Callback``, Lightning's ``Callback``, the Hugging Face
    ``TrainerCallback``), while a plugin module must not import its framework (it is
    imported at discovery, whether or not the user trains anything). Write the methods in
    a plain mixin and declare the class at module level::

        class _Logging:
            def __init__(self, sink):
                super().__init__()
                self.sink = sink

            def after_iteration(self, model, epoch, evals_log):
                ...

        AutologCallback = autolog.lazy_subclass(
            "xgboost.callback:TrainingCallback", _Logging, name="AutologCallback"
        )

    In a hook (the framework is imported by then), ``AutologCallback(call.sink)`` builds
    the class once per process (thread-safe) and returns an instance.

    Args:
        base: the framework class, ``"module:Qualname"``.
        *mixins: the plugin's classes, placed before ``base`` in the MRO.
        name: the ``__name__`` of the built class.
    """
    module, sep, qualname = base.partition(":")
    if not sep or not module or not qualname:
        raise ValueError(f"lazy_subclass base must be 'module:Qualname', got {base!r}")
    bad = [m for m in mixins if not isinstance(m, type)]
    if bad:
        raise TypeError(f"lazy_subclass mixins must be classes, got {bad!r}")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"lazy_subclass name must be an identifier, got {name!r}")
    return LazySubclass(base, mixins, name)


def flatten_params(
    params: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None,
    prefix: str = "",
    sep: str = ".",
) -> dict[str, str]:
    """Params as MLflow stores them: a flat ``{str: str}``, ready for `RunSink.log_params`.

    - ``params`` is a mapping or a list of ``(key, value)`` pairs (XGBoost takes both);
      ``None`` gives ``{}``.
    - Nested mappings are flattened, their keys joined with ``sep``:
      ``{"booster": {"eta": 0.3}}`` gives ``{"booster.eta": "0.3"}``. ``prefix`` (when not
      empty) goes in front of every key, joined with ``sep`` too.
    - Every other value is kept as its ``str``, lists and tuples included:
      ``{"eval_metric": ["auc", "logloss"]}`` gives ``"['auc', 'logloss']"``.
    - A key given more than once in a list of pairs keeps every value, as the ``str`` of
      their list (XGBoost reads repeated ``eval_metric`` pairs that way); a param has one
      value per run.

    Credentials are not this function's business: the sink redacts values that look like
    them when they are logged.
    """
    if params is None:
        return {}
    flat: dict[str, list[Any]] = {}
    _flatten_into(flat, params, prefix, sep)
    return {key: str(values[0] if len(values) == 1 else values) for key, values in flat.items()}


def _flatten_into(flat: dict[str, list[Any]], params: Any, prefix: str, sep: str) -> None:
    if isinstance(params, Mapping):
        pairs = list(params.items())
    elif isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(
            f"flatten_params needs a mapping or a list of (key, value) pairs, got "
            f"{type(params).__name__} {params!r}"
        )
    else:
        pairs = []
        for item in params:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise TypeError(f"flatten_params: the item {item!r} is not a (key, value) pair")
            pairs.append((item[0], item[1]))
    for item in pairs:
        key, value = item
        full = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            _flatten_into(flat, value, full, sep)
        else:
            flat.setdefault(full, []).append(value)


def _jsonable(value: Any) -> Any:
    """NumPy scalars and arrays (``.item()``, ``.tolist()``), sets; else the ``str``."""
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            try:
                return convert()
            except Exception:  # not the NumPy method after all
                pass
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def log_dict(sink: RunSink, dictionary: Mapping[str, Any], artifact_file: str) -> None:
    """Store ``dictionary`` as the artifact ``artifact_file``, like ``mlflow.log_dict``.

    YAML when the file name ends in ``.yaml`` or ``.yml``, JSON otherwise (indented, keys
    in the given order). Values JSON cannot hold are converted: NumPy scalars and arrays to
    numbers and lists, anything else to its ``str``. Goes through `RunSink.log_text`, so it
    only enqueues, like every sink method::

        autolog.log_dict(call.sink, {"f0": 0.7, "f1": 0.3}, "feature_importance.json")
    """
    if not isinstance(dictionary, Mapping):
        raise TypeError(f"log_dict needs a mapping, got {type(dictionary).__name__}")
    text = json.dumps(dict(dictionary), indent=2, default=_jsonable)
    if artifact_file.lower().endswith((".yaml", ".yml")):
        import yaml  # type: ignore[import-untyped]  # MLflow's own dependency

        text = yaml.safe_dump(json.loads(text), default_flow_style=False, sort_keys=False)
    sink.log_text(text, artifact_file)


def add_callback(call: Call, callback: Any, argument: str = "callbacks") -> bool:
    """Have the call run with ``callback`` appended to its callbacks; returns whether it was.

    For a ``before`` hook of a framework that takes a list of callbacks (XGBoost, Keras,
    Lightning, the Hugging Face ``Trainer``)::

        autolog.add_callback(call, LoggingCallback(call.sink))

    The call gets a new list: the caller's callbacks (none when the argument is ``None``
    or left out), then ``callback``, last, so that it sees what theirs did at each step
    (see the guide's "Callback order"). The caller's list is never changed.

    Nothing is added, and ``False`` returned, when the list already holds an instance of
    ``callback``'s class (a nested call, or the user added one by hand), or when the
    argument is neither ``None`` nor a list or tuple: a framework's own container (Keras's
    ``CallbackList``), which the framework uses as it is.

    Raises ``KeyError`` (from `Call.replace`) when the wrapped function takes no argument
    named ``argument``.
    """
    given = call.get(argument)
    if given is None:
        given = ()
    elif not isinstance(given, (list, tuple)):
        return False
    if any(isinstance(existing, type(callback)) for existing in given):
        return False
    call.replace(argument, [*given, callback])
    return True


def log_history(
    sink: RunSink,
    history: Mapping[str, Sequence[Any] | None],
    every_n_steps: int | None = None,
    *,
    first_step: int = 0,
) -> None:
    """Log per-iteration values a framework kept, each at its iteration as step.

    ``history`` maps a metric name to its values in order: scikit-learn's ``loss_curve_``,
    XGBoost's ``evals_result()`` flattened, a Keras ``History.history``. The i-th value is
    logged at step ``first_step + i``. With ``every_n_steps`` (a plugin passes
    ``call.options.log_every_n_steps``; ``None`` logs every value), only every n-th value
    is logged, from the first, and always the last one, so the metric's latest value (the
    one the runs table shows and the logged model is linked to) is the final one::

        autolog.log_history(call.sink, {"loss": model.loss_curve_}, every_n_steps=2)
        # loss_curve_ = [0.9, 0.5, 0.3, 0.2]: logged at steps 0, 2 and 3

    A name whose values are ``None`` is skipped (an attribute this estimator lacks). The
    values of one step go in one `RunSink.log_metrics` call. Raises ``ValueError`` for an
    ``every_n_steps`` that is not ``None`` or an int >= 1, ``TypeError`` for a history
    that is not a mapping of sequences (naming the metric).
    """
    if every_n_steps is not None and (
        isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 1
    ):
        # A plugin that gives 0 a meaning of its own (off, say) acts on it before calling.
        raise ValueError(
            f"log_history: every_n_steps must be None or an int >= 1, got {every_n_steps!r}"
        )
    if not isinstance(history, Mapping):
        raise TypeError(
            f"log_history needs a mapping of metric names to values, got {type(history).__name__}"
        )
    every = every_n_steps or 1
    by_step: dict[int, dict[str, Any]] = {}
    for name, values in history.items():
        if values is None:
            continue
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError(
                f"log_history: the values of {name!r} must be a sequence, got {type(values).__name__}"
            )
        last = len(values) - 1  # -1 for no values: nothing to log
        for i in [*range(0, last + 1, every), *([last] if last > 0 and last % every else [])]:
            by_step.setdefault(i, {})[name] = values[i]
    for i in sorted(by_step):
        sink.log_metrics(by_step[i], step=first_step + i)


class _Snapshot:
    """The loader `snapshot` returns: unpickles the bytes taken when it was made."""

    __slots__ = ("_data", "_kind")

    def __init__(self, data: bytes, kind: str) -> None:
        self._data = data
        self._kind = kind

    def __call__(self) -> Any:
        return pickle.loads(self._data)

    def __repr__(self) -> str:
        return f"<snapshot of a {self._kind}, {len(self._data)} bytes>"


def snapshot(model: Any) -> Callable[[], Any]:
    """A ``loader`` for `RunSink.log_model`: the model as it is now, however it changes later.

    The core packages a model on a background worker, after the hook returned; by then the
    training code may have refit or changed the live object. ``snapshot`` pickles the model
    at once, on the training thread, and returns a loader that unpickles a copy::

        call.sink.log_model("sklearn", loader=autolog.snapshot(model))

    Pickling costs a pass over the model: fine for what pickles quickly (scikit-learn
    estimators, XGBoost boosters). A model best saved by its framework (a Keras model, a
    large network) is written to a file instead, in a folder of its own, and handed over
    with ``temp_dir`` (see `RunSink.log_model`). Raises ``TypeError`` naming the model's
    type when it cannot be pickled.
    """
    kind = type(model).__qualname__
    try:
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(
            f"snapshot: a {kind} cannot be pickled ({exc}); save it with its framework into "
            "a folder of its own and pass log_model a loader reading it, with temp_dir=folder"
        ) from exc
    return _Snapshot(data, kind)
