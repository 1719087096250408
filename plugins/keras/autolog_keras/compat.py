"""Which Keras a model belongs to, and the few objects the plugin needs from it.

Three Keras lines can be in use: Keras 3 (``keras``, any backend), Keras 2 shipped as
``tf.keras`` (the ``keras`` 2.x package) and the standalone ``tf_keras`` package. A model
tells us which one through the module of its classes, so nothing is imported that the user
did not import already.
"""

from __future__ import annotations

import functools
import importlib
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["KerasFlavor", "custom_objects", "flavor_of"]

_PACKAGES = ("keras", "tf_keras")


@dataclass(frozen=True)
class KerasFlavor:
    """One Keras installation as the plugin sees it."""

    package: str
    """Top-level import name: ``"keras"`` or ``"tf_keras"``."""
    version: str
    major: int

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self.package)

    @property
    def callbacks(self) -> ModuleType:
        return importlib.import_module(f"{self.package}.callbacks")

    def load_model(self, path: str, custom_objects: dict[str, Any] | None = None) -> Any:
        module = self.module
        saving = getattr(module, "saving", None)
        loader = getattr(saving, "load_model", None) or module.models.load_model
        return loader(path, custom_objects=custom_objects or None)

    @property
    def backend(self) -> str:
        """``tensorflow``, ``jax``, ``torch``... (always ``tensorflow`` before Keras 3)."""
        if self.major < 3:
            return "tensorflow"
        return str(self.module.backend.backend())

    @property
    def mlflow_flavor(self) -> str:
        # mlflow.keras handles Keras 3 only; Keras 2 models are MLflow's tensorflow flavor.
        return "keras" if self.major >= 3 else "tensorflow"

    @property
    def requirements(self) -> tuple[str, ...]:
        """Import names whose installed versions a packaged model needs."""
        if self.major >= 3:
            return ("keras", self.backend)
        if self.package == "tf_keras":
            return ("tensorflow", "tf_keras")
        return ("tensorflow",)


def flavor_of(model: Any) -> KerasFlavor:
    """The Keras installation ``model`` (or its class) comes from."""
    cls = model if isinstance(model, type) else type(model)
    for klass in cls.__mro__:
        package = klass.__module__.partition(".")[0]
        if package in _PACKAGES:
            return _flavor(package)
    raise TypeError(f"{cls.__qualname__} is not a Keras model class")


@functools.cache
def _flavor(package: str) -> KerasFlavor:
    module = sys.modules.get(package) or importlib.import_module(package)
    version = str(getattr(module, "__version__", "0"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    return KerasFlavor(package=package, version=version, major=major)


_FRAMEWORK_MODULES = ("keras.", "tf_keras.", "tensorflow.", "keras_", "tf_keras_")


def custom_objects(model: Any) -> dict[str, Any]:
    """The user-defined classes and functions a saved ``model`` needs to load again.

    Subclassed models and custom layers that were never registered with
    ``register_keras_serializable`` still load in this process when passed by name.
    """
    found: dict[str, Any] = {}

    def add(obj: Any) -> None:
        target = obj if isinstance(obj, type) or callable(obj) else type(obj)
        module = getattr(target, "__module__", "") or ""
        name = getattr(target, "__name__", None)
        if name and not module.startswith(_FRAMEWORK_MODULES) and module != "builtins":
            found.setdefault(name, target)

    add(type(model))
    flatten = getattr(model, "_flatten_layers", None)
    layers = flatten(include_self=False, recursive=True) if flatten else model.layers
    for layer in layers:
        add(type(layer))
    for spec in (getattr(model, "loss", None),):
        for item in (
            spec.values()
            if isinstance(spec, dict)
            else spec
            if isinstance(spec, (list, tuple))
            else [spec]
        ):
            if item is not None and not isinstance(item, str):
                add(item)
    return found
