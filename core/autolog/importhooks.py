"""Post-import hooks that autolog owns: watch a module name, hear about every import of it.

wrapt ships post-import hooks too, but they cannot be unregistered and fire once per
module name (the exact rule differs between wrapt 1.x and 2.x). The registry must be able
to stop listening (disable before import means nothing is patched later) and must hear
about a module that is imported again after being removed from ``sys.modules``. So this
module keeps its own small meta-path finder: it never imports anything itself, it only
wraps the loader the rest of ``sys.meta_path`` chose, and calls the listener after the
module body ran. A listener that raises is the listener's problem, never the importer's.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["ImportWatcher"]

Listener = Callable[[ModuleType], None]


class _NotifyingLoader(importlib.abc.Loader):
    """Delegates to the real loader and reports the module once its body has run."""

    def __init__(self, loader: Any, on_loaded: Listener) -> None:
        self._loader = loader
        self._on_loaded = on_loaded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Later code (importlib.resources, pkgutil, reload) expects the real loader.
        spec = getattr(module, "__spec__", None)
        if spec is not None:
            spec.loader = self._loader
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        self._on_loaded(module)


class ImportWatcher(importlib.abc.MetaPathFinder):
    """Calls ``listener(module)`` after each import of a watched module name."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._names: set[str] = set()
        self._lock = threading.RLock()
        self._local = threading.local()

    # Watch list ------------------------------------------------------------------------

    def watch(self, name: str) -> None:
        with self._lock:
            self._names.add(name)
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def unwatch(self, name: str) -> None:
        with self._lock:
            self._names.discard(name)
            if not self._names and self in sys.meta_path:
                sys.meta_path.remove(self)

    def watched(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._names)

    # Finder protocol -------------------------------------------------------------------

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._names:
            return None
        busy: set[str] = self._local.__dict__.setdefault("busy", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = self._find_with_others(fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _NotifyingLoader(spec.loader, self._notify)
        return spec

    def _find_with_others(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec  # type: ignore[no-any-return]
        return None

    def _notify(self, module: ModuleType) -> None:
        if module.__name__ not in self._names:
            return
        # The user's import must succeed whatever the listener did.
        with contextlib.suppress(Exception):
            self._listener(module)
