"""The patch registry: applies declared patches with wrapt, and takes them off exactly.

Enabling a plugin records it and watches the modules its patches target. A patch is applied
the moment its module is imported (or at once, if it already is); autolog never imports a
target module itself. A class attribute is patched on the class in the MRO that defines it;
the raw ``__dict__`` value is recorded so that disabling puts back the very same object.
Applying is idempotent per (plugin, target, owner): enabling twice wraps once.

A module-level target's re-exports (`Patch.reexported_by`) get the same wrapper when
their module has been imported, and their original back on disable. `locate` and
`is_patched` are the public questions a test (and the conformance kit) asks.

What happens inside a wrapped call is `autolog.interception`'s business.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, SupportsIndex

import wrapt

from autolog import safety
from autolog.applied import Applied, EnabledLookup, EnabledPlugin
from autolog.importhooks import ImportWatcher
from autolog.interception import make_wrapper_function
from autolog.plugin import Patch

__all__ = [
    "Applied",
    "EnabledPlugin",
    "Location",
    "PatchError",
    "Registry",
    "is_patched",
    "locate",
    "registry",
]


class PatchError(Exception):
    """A patch target cannot be wrapped (missing, or of a kind autolog refuses)."""


if TYPE_CHECKING:
    _FunctionWrapper = wrapt.FunctionWrapper[..., Any]
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper[..., Any]
else:  # wrapt < 2 has no subscriptable FunctionWrapper
    _FunctionWrapper = wrapt.FunctionWrapper
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper


class _ModuleByName:
    """Pickles as ``importlib.import_module(name)``: a module itself cannot be pickled."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        return (importlib.import_module, (self.name,))


def _by_reference(owner: Any, attr: str) -> tuple[Any, ...]:
    """What a wrapper pickles as: ``getattr(owner, attr)``, found again when unpickled.

    That is how pickle refers to a function or method (by where it lives), so what the
    caller sends to a process pool or saves arrives as the same function, wrapped there
    only if autolog is enabled there. wrapt's proxies refuse pickling by default.
    """
    if isinstance(owner, ModuleType):
        return (getattr, (_ModuleByName(owner.__name__), attr))
    return (getattr, (owner, attr))


class _AutologBoundWrapper(_BoundFunctionWrapper):
    """wrapt's bound wrapper (``model.fit``), which pickles by reference like a method."""

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        applied: Applied | None = self._self_parent._self_autolog_applied
        if applied is None:
            return super().__reduce_ex__(protocol)
        # On the class (``Model.fit``) the instance is None: refer to it through the class.
        target = self._self_instance
        if target is None:
            target = getattr(self, "_self_owner", None) or applied.owner
        return _by_reference(target, applied.attr)


class _AutologWrapper(_FunctionWrapper):
    """wrapt's FunctionWrapper, marked so that autolog recognises its own wrappers."""

    _self_autolog_applied: Applied | None = None
    __bound_function_wrapper__ = _AutologBoundWrapper

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        applied = self._self_autolog_applied
        if applied is None:
            return super().__reduce_ex__(protocol)
        return _by_reference(applied.owner, applied.attr)


class Registry:
    """Process-wide record of enabled plugins and applied patches."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._enabled: dict[str, EnabledPlugin] = {}
        self._applied: dict[tuple[str, str, int], Applied] = {}
        self._watcher = ImportWatcher(self._on_import)

    # Queries -----------------------------------------------------------------------------

    def enabled(self, name: str) -> EnabledPlugin | None:
        return self._enabled.get(name)

    def enabled_names(self) -> list[str]:
        with self._lock:
            return sorted(self._enabled)

    def applied(self, plugin_name: str | None = None) -> list[Applied]:
        with self._lock:
            return [
                a
                for a in self._applied.values()
                if a.active and (plugin_name is None or a.plugin_name == plugin_name)
            ]

    # Enable / disable ----------------------------------------------------------------------

    def enable(self, enabled: EnabledPlugin) -> None:
        """Enable (or reconfigure) a plugin; patches land now or when their module loads."""
        name = enabled.plugin.name
        with self._lock:
            self._enabled[name] = enabled
            for patch in enabled.plugin.patches:
                for module_name in _modules_of(patch):
                    self._watcher.watch(module_name)
                module = sys.modules.get(patch.module)
                if module is not None:
                    self._apply_safely(name, patch, module)

    def disable(self, name: str) -> None:
        """Disable a plugin and restore every object it patched."""
        with self._lock:
            enabled = self._enabled.pop(name, None)
            for key in [k for k in self._applied if k[0] == name]:
                self._restore(self._applied.pop(key))
            if enabled is not None:
                still_needed = {
                    m
                    for other in self._enabled.values()
                    for p in other.plugin.patches
                    for m in _modules_of(p)
                }
                for patch in enabled.plugin.patches:
                    for module_name in _modules_of(patch):
                        if module_name not in still_needed:
                            self._watcher.unwatch(module_name)

    def disable_all(self) -> None:
        with self._lock:
            for name in list(self._enabled):
                self.disable(name)

    # Import hook -----------------------------------------------------------------------------

    def _on_import(self, module: ModuleType) -> None:
        with self._lock:
            for name, enabled in list(self._enabled.items()):
                for patch in enabled.plugin.patches:
                    if patch.module == module.__name__:
                        self._apply_safely(name, patch, module)
                    for module_name, attr in patch.reexports:
                        if module_name == module.__name__:
                            self._reexport_safely(name, patch, module, attr)

    def _apply_safely(self, plugin_name: str, patch: Patch, module: ModuleType) -> None:
        self._guarded(plugin_name, patch, patch.target, self._apply, module)

    def _reexport_safely(
        self, plugin_name: str, patch: Patch, module: ModuleType, attr: str
    ) -> None:
        where = f"{module.__name__}:{attr} (a re-export of {patch.target})"
        self._guarded(plugin_name, patch, where, self._reexport, module, attr)

    def _guarded(self, plugin_name: str, patch: Patch, where: str, apply: Any, *args: Any) -> None:
        try:
            apply(plugin_name, patch, *args)
        except PatchError as exc:
            if patch.optional:
                return
            safety.warn(
                f"autolog plugin {plugin_name!r} cannot patch {where}: {exc}",
                once_key=("patch", plugin_name, where),
            )
        except Exception as exc:
            safety.report_failure(plugin_name, f"patching {where}", exc)

    # Applying --------------------------------------------------------------------------------

    def _apply(self, plugin_name: str, patch: Patch, module: ModuleType) -> None:
        *parents, attr = patch.path
        parent: Any = module
        for part in parents:
            try:
                parent = getattr(parent, part)
            except AttributeError:
                raise PatchError(f"{module.__name__} has no attribute path {part!r}") from None
        owner, raw, own = _locate(parent, attr)
        key = (plugin_name, patch.target, id(owner))
        existing = self._applied.get(key)
        if existing is not None and existing.owner is owner:
            return
        mine = raw._self_autolog_applied if isinstance(raw, _AutologWrapper) else None
        if mine is not None and mine.plugin_name == plugin_name:
            # A re-export (``from a import f`` in another module) of an object this plugin
            # already wrapped: share the wrapper, but remember the original here too, so
            # that disabling restores this name as well.
            self._applied[key] = dataclasses.replace(
                mine, patch=patch, owner=owner, attr=attr, original=mine.original, own_attribute=own
            )
            return
        applied = _build(plugin_name, patch, owner, attr, raw, own, self.enabled)
        setattr(owner, attr, applied.replacement)
        self._applied[key] = applied
        for module_name, reexported_as in patch.reexports:
            reexporter = sys.modules.get(module_name)
            # A module still running its body (the package whose __init__ is importing the
            # target's module right now) is handled when its own import completes.
            if reexporter is not None and not _initializing(reexporter):
                self._reexport_safely(plugin_name, patch, reexporter, reexported_as)

    def _reexport(self, plugin_name: str, patch: Patch, module: ModuleType, attr: str) -> None:
        """Give ``module.attr``, a copy of the binding `patch` wrapped, the same wrapper."""
        target_module = sys.modules.get(patch.module)
        main = self._applied.get((plugin_name, patch.target, id(target_module)))
        if main is None or not main.active:
            return  # the target itself is not patched (missing, or not imported yet)
        key = (plugin_name, f"{patch.target} as {module.__name__}:{attr}", id(module))
        existing = self._applied.get(key)
        if existing is not None and existing.owner is module:
            return
        namespace = vars(module)
        if attr not in namespace:
            raise PatchError(f"{module.__name__} has no attribute {attr!r} to re-export it")
        current = namespace[attr]
        if current is not main.replacement:  # else: it took the wrapper at import
            if current is not main.original:
                raise PatchError(
                    f"{module.__name__}.{attr} is not the same object as {patch.target}"
                )
            setattr(module, attr, main.replacement)
        self._applied[key] = dataclasses.replace(
            main, owner=module, attr=attr, own_attribute=True, active=True
        )

    def _restore(self, applied: Applied) -> None:
        applied.active = False
        owner, attr = applied.owner, applied.attr
        current = _raw_attribute(owner, attr)
        if current is applied.original and applied.own_attribute:
            return  # put back already, through another target sharing this wrapper
        if current is not applied.replacement:
            safety.warn(
                f"autolog could not restore {applied.patch.target}: another library wrapped it "
                "after autolog did; autolog's wrapper now passes calls straight through.",
                once_key=("restore", applied.plugin_name, applied.patch.target),
            )
            return
        if applied.own_attribute:
            setattr(owner, attr, applied.original)
        else:
            delattr(owner, attr)

    @staticmethod
    def iter_wrappers(obj: Any) -> Iterator[Applied]:
        """The autolog patches wrapped around ``obj`` (outermost first)."""
        while isinstance(obj, _AutologWrapper):
            if obj._self_autolog_applied is not None:
                yield obj._self_autolog_applied
            obj = obj.__wrapped__


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a patch target is defined, as `locate` found it.

    Attributes:
        owner: the object the patch lands on: the module, or the class in the MRO that
            defines the attribute (or an instance, for a method it inherits).
        attr: the attribute's name on ``owner``.
        value: what ``owner.__dict__[attr]`` held when located (the raw object: a
            ``property``, ``classmethod`` or function, not what attribute access returns).
        own: whether ``owner`` defines the attribute itself (``False``: an instance's
            inherited method, patched on the instance only).
    """

    owner: Any
    attr: str
    value: Any
    own: bool

    def current(self) -> Any:
        """What the owner holds under `attr` now (the raw object, as `value`)."""
        return _raw_attribute(self.owner, self.attr)


def locate(target: str | Patch) -> Location:
    """Where a target (``"module:Qualname.attr"`` or a `Patch`) is defined, right now.

    Imports nothing: the target's module must already be imported. Raises `PatchError`
    naming what is missing. The registry patches exactly this location.
    """
    patch = target if isinstance(target, Patch) else Patch(target)
    module = sys.modules.get(patch.module)
    if module is None:
        raise PatchError(f"module {patch.module!r} is not imported")
    *parents, attr = patch.path
    parent: Any = module
    for part in parents:
        try:
            parent = getattr(parent, part)
        except AttributeError:
            raise PatchError(f"{module.__name__} has no attribute path {part!r}") from None
    owner, raw, own = _locate(parent, attr)
    return Location(owner, attr, raw, own)


def is_patched(obj: Any) -> bool:
    """Whether ``obj`` is a wrapper autolog put in place.

    ``obj`` is a function as found in a module, or a raw class attribute (as in
    ``vars(cls)`` or `Location.current`); for a ``property`` its getter is checked.
    """
    if isinstance(obj, property):
        obj = obj.fget
    return isinstance(obj, _AutologWrapper)


def _modules_of(patch: Patch) -> list[str]:
    return [patch.module, *(module for module, _ in patch.reexports)]


def _initializing(module: ModuleType) -> bool:
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _raw_attribute(owner: Any, attr: str) -> Any:
    namespace = getattr(owner, "__dict__", {})
    if attr in namespace:
        return namespace[attr]
    return getattr(owner, attr, None)


def _locate(parent: Any, attr: str) -> tuple[Any, Any, bool]:
    """Where ``attr`` is defined: (owner to patch, raw value there, defined on owner itself)."""
    if isinstance(parent, type):
        for klass in parent.__mro__:
            if attr in vars(klass):
                return klass, vars(klass)[attr], True
        raise PatchError(f"{parent.__qualname__} has no attribute {attr!r}")
    namespace = getattr(parent, "__dict__", None)
    if namespace is not None and attr in namespace:
        return parent, namespace[attr], True
    if not hasattr(parent, attr):
        raise PatchError(f"{parent!r} has no attribute {attr!r}")
    # An attribute an instance inherits from its class: patch the instance only.
    return parent, getattr(parent, attr), False


def _build(
    plugin_name: str,
    patch: Patch,
    owner: Any,
    attr: str,
    raw: Any,
    own: bool,
    lookup: EnabledLookup,
) -> Applied:
    in_class = isinstance(owner, type)
    if isinstance(raw, property):
        if raw.fget is None:
            raise PatchError("it is a property without a getter")
        func: Any = raw.fget
        # property calls fget(obj) directly, so the instance arrives as an argument.
        drop_first = False
    elif isinstance(raw, (classmethod, staticmethod)):
        func = raw.__func__
        drop_first = isinstance(raw, classmethod)
    elif inspect.isfunction(raw):
        func = raw
        drop_first = in_class
    elif callable(raw):
        func = raw
        drop_first = False
    else:
        raise PatchError(f"it is a {type(raw).__name__}, not a function, method or property")
    if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        # The call returns before any of the work is done: its run would end before the
        # values logged while iterating arrive, and they would be dropped.
        raise PatchError("generator functions are not supported")

    signature = _signature(func, drop_first)
    applied = Applied(
        plugin_name=plugin_name,
        patch=patch,
        owner=owner,
        attr=attr,
        original=raw,
        replacement=None,
        own_attribute=own,
        signature=signature,
        is_async=inspect.iscoroutinefunction(func),
    )
    wrapper_function = make_wrapper_function(applied, lookup)
    if isinstance(raw, property):
        getter = _AutologWrapper(func, wrapper_function)
        getter._self_autolog_applied = applied
        replacement: Any = property(getter, raw.fset, raw.fdel, raw.__doc__)
    else:
        replacement = _AutologWrapper(raw, wrapper_function)
        replacement._self_autolog_applied = applied
    applied.replacement = replacement
    return applied


def _signature(func: Any, drop_first: bool) -> inspect.Signature:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        # Builtins without a text signature: accept anything, capture by keyword only.
        return inspect.Signature(
            [
                inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
            ]
        )
    if drop_first:
        params = list(signature.parameters.values())
        if params and params[0].kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            signature = signature.replace(parameters=params[1:])
    return signature


registry = Registry()
