"""Helpers every plugin needs, none of which imports a framework or MLflow.

- `lazy_subclass`: a class defined against a framework base class that is imported only
  when the class is first used (a framework that accepts only subclasses of its own
  callback base, while a plugin module must not import the framework).
- `flatten_params`: a params mapping, or a list of ``(key, value)`` pairs, as the flat
  ``{str: str}`` MLflow stores, nested dicts joined with a separator.
- `log_dict`: a dict stored as a JSON or YAML artifact through `RunSink.log_text`.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from autolog.plugin import RunSink

__all__ = ["LazySubclass", "flatten_params", "lazy_subclass", "log_dict"]


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
