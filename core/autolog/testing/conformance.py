"""Conformance checks a plugin author runs against a real installed framework.

`check_plugin` exercises the guarantees the core makes for every plugin: patches
land on the right objects, signatures and names survive wrapping, enabling twice wraps
once, disabling restores the very same objects, enable/disable races from several threads
leave a consistent state, no target stays reachable unpatched under another public name of
the framework's package (a re-export the plugin did not name), an exception in the plugin's
hooks never breaks the user's call, and (in fresh subprocesses) every ordering of
import/enable/disable gives the same result.

The kit uses only public names of the core (`autolog.registry.locate`,
`autolog.registry.is_patched`, `autolog.discovery`), so it shows what a plugin's own tests
can do too.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable
from typing import Any

from autolog import discovery, env
from autolog.applied import EnabledPlugin
from autolog.discovery import PluginInfo
from autolog.plugin import Patch, Plugin
from autolog.registry import Location, is_patched, locate, registry
from autolog.safety import AutologWarning, reset_reported

__all__ = ["CheckResult", "ConformanceReport", "check_plugin", "plugin_info"]


@dataclasses.dataclass
class CheckResult:
    """The outcome of one conformance check, an item of `ConformanceReport.results`.

    Attributes:
        name: What was checked, in words: ``"wrapping preserves name, doc, signature,
            __wrapped__"``.
        ok: Whether the plugin passed this check.
        detail: Why it failed (or a note on a pass); empty when there is nothing to add.
    """

    name: str
    ok: bool
    detail: str = ""


@dataclasses.dataclass
class ConformanceReport:
    """What `check_plugin` found: one `CheckResult` per check.

    ``str(report)`` lists every check with ``[ok]`` or ``[FAIL]``; in a test, call
    `assert_ok`.

    Attributes:
        plugin: The plugin's name (its entry-point name).
        results: Every check that ran, in order.
    """

    plugin: str
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(r.ok for r in self.results)

    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [r for r in self.results if not r.ok]

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with the whole report when a check failed."""
        if not self.ok:
            raise AssertionError(str(self))

    def __str__(self) -> str:
        lines = [f"conformance of plugin {self.plugin!r}:"]
        for r in self.results:
            lines.append(
                f"  [{'ok' if r.ok else 'FAIL'}] {r.name}{': ' + r.detail if r.detail else ''}"
            )
        return "\n".join(lines)


def plugin_info(name: str) -> PluginInfo:
    """What discovery finds for the installed plugin ``name`` (its entry point).

    The `PluginInfo` says whether it loaded (``plugin_class``, ``load_error``), whether its
    requirements are met (``unmet``, ``available``) and which framework version is
    installed. Raises ``LookupError`` when no installed distribution has an entry point of
    that name. A test of an installed plugin starts with it::

        info = autolog.testing.plugin_info("sklearn")
        assert info.available, info.state
    """
    infos = discovery.discover(requested=[name])
    info = infos.get(name)
    if info is None:
        raise LookupError(
            f"no installed plugin is named {name!r} (entry point group "
            f"{discovery.ENTRY_POINT_GROUP!r}); installed: {', '.join(sorted(infos)) or 'none'}"
        )
    return info


@dataclasses.dataclass
class _Target:
    patch: Patch
    location: Location

    @property
    def original(self) -> Any:
        return self.location.value

    @property
    def own(self) -> bool:  # defined on the owner itself (else: an instance's inherited method)
        return self.location.own

    def current(self) -> Any:
        return self.location.current()


def _resolve(patch: Patch) -> _Target | None:
    try:
        importlib.import_module(patch.module)
        return _Target(patch, locate(patch))
    except Exception:
        return None


def _plugin_class(plugin: str | type[Plugin]) -> type[Plugin]:
    if isinstance(plugin, type):
        return plugin
    info = plugin_info(plugin)
    if info.plugin_class is None:
        raise LookupError(f"plugin {plugin!r} is not loadable: {info.state}")
    return info.plugin_class


def _enable(cls: type[Plugin]) -> None:
    registry.enable(EnabledPlugin(cls(), cls.make_options()))


def _callable_of(raw: Any) -> Any:
    """The wrapper autolog put in place, or the plain function behind a descriptor."""
    if is_patched(raw) and not isinstance(raw, property):
        return raw
    if isinstance(raw, property):
        return raw.fget
    if isinstance(raw, (classmethod, staticmethod)):
        return raw.__func__
    return raw


def check_plugin(
    plugin: str | type[Plugin],
    *,
    exercise: Callable[[], Any] | None = None,
    import_code: str | None = None,
    exercise_code: str | None = None,
    threads: int = 8,
) -> ConformanceReport:
    """Run the conformance checks; returns a report (call ``.assert_ok()`` in a test).

    Args:
        plugin: the plugin name (found through its entry point) or class.
        exercise: a zero-argument function making one patched call in this process; used
            to check that failing hooks never break the user's call.
        import_code: Python source that imports the framework, for the ordering checks,
            which run in fresh subprocesses.
        exercise_code: Python source that makes one patched call in those subprocesses.
        threads: how many threads race enable/disable in the thread check.
    """
    cls = _plugin_class(plugin)
    results: list[CheckResult] = []
    was_enabled = registry.enabled(cls.name)
    registry.disable(cls.name)
    try:
        targets = [t for t in (_resolve(p) for p in cls.patches) if t is not None]
        missing = [
            p.target
            for p in cls.patches
            if not p.optional and not any(t.patch is p for t in targets)
        ]
        results.append(
            CheckResult(
                "targets resolve",
                not missing and bool(targets),
                f"missing: {missing}" if missing else f"{len(targets)} targets",
            )
        )
        results.append(_check_wrapping(cls, targets))
        results.append(_check_reexports(cls, targets))
        results.append(_check_idempotent(cls, targets))
        results.append(_check_restore(cls, targets))
        results.append(_check_threads(cls, targets, threads))
        if exercise is not None:
            results.append(_check_failing_hooks(cls, exercise))
        if import_code is not None and exercise_code is not None:
            results.extend(_check_orderings(cls.name, import_code, exercise_code))
    finally:
        registry.disable(cls.name)
        if was_enabled is not None:
            registry.enable(was_enabled)
    return ConformanceReport(cls.name, results)


def _check_wrapping(cls: type[Plugin], targets: list[_Target]) -> CheckResult:
    _enable(cls)
    problems = []
    for t in targets:
        raw = t.current()
        wrapped = _callable_of(raw)
        # A classmethod/staticmethod is wrapped as the descriptor itself, a property by its getter.
        inner = t.original.fget if isinstance(t.original, property) else t.original
        original = _callable_of(t.original)
        if not t.own:  # a fresh bound method each time: compare the functions behind them
            inner = t.original.__func__
        if not is_patched(raw):
            problems.append(f"{t.patch.target} not wrapped")
            continue
        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            if getattr(wrapped, attr, None) != getattr(original, attr, None):
                problems.append(f"{t.patch.target}.{attr} changed")
        behind = wrapped.__wrapped__ if t.own else getattr(wrapped.__wrapped__, "__func__", None)
        if behind is not inner:
            problems.append(f"{t.patch.target}.__wrapped__ is not the original")
        try:
            if inspect.signature(wrapped) != inspect.signature(original):
                problems.append(f"{t.patch.target} signature changed")
        except (TypeError, ValueError):
            pass
    registry.disable(cls.name)
    return CheckResult(
        "wrapping preserves name, doc, signature, __wrapped__", not problems, "; ".join(problems)
    )


def _check_reexports(cls: type[Plugin], targets: list[_Target]) -> CheckResult:
    """No target is reachable, unpatched, under another public name of its package.

    Scans the framework's already-imported public modules (no name part starting with
    ``_``) for public attributes that are the very original object while the plugin is
    enabled: a call through that name would bypass autolog.
    """
    _enable(cls)
    try:
        missed = []
        for t in targets:
            if not t.own:
                continue
            package = t.patch.module.partition(".")[0]
            for module_name, attr in _public_names(package, t.original):
                missed.append(
                    f"{module_name}.{attr} is {t.patch.target}, unpatched "
                    f"({_fix_for(t, module_name, attr)})"
                )
    finally:
        registry.disable(cls.name)
    return CheckResult(
        "no target reachable unpatched under another public name", not missed, "; ".join(missed)
    )


def _fix_for(t: _Target, module_name: str, attr: str) -> str:
    """What the plugin author adds so that ``module_name.attr`` is patched too."""
    if len(t.patch.path) != 1:  # a method bound to a module-level name: a patch of its own
        return f"add Patch('{module_name}:{attr}')"
    if getattr(t.original, "__module__", None) == module_name != t.patch.module:
        return (
            f"target '{module_name}:{attr}', where it is defined, with "
            f"reexported_by=({t.patch.module!r},)"
        )
    item = module_name if attr == t.location.attr else f"{module_name}:{attr}"
    return f"add reexported_by=({item!r},) to its Patch"


def _public_names(package: str, obj: Any) -> list[tuple[str, str]]:
    found = []
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == package or module_name.startswith(package + ".")):
            continue
        if any(part.startswith("_") for part in module_name.split(".")):
            continue
        for attr, value in list(vars(module).items()):
            if value is obj and not attr.startswith("_"):
                found.append((module_name, attr))
    return sorted(found)


def _check_idempotent(cls: type[Plugin], targets: list[_Target]) -> CheckResult:
    _enable(cls)
    first = [t.current() for t in targets]
    _enable(cls)
    second = [t.current() for t in targets]
    doubled = [
        t.patch.target
        for t, a, b in zip(targets, first, second, strict=True)
        if a is not b or is_patched(getattr(_callable_of(b), "__wrapped__", None))
    ]
    registry.disable(cls.name)
    return CheckResult(
        "enabling twice wraps once", not doubled, f"double: {doubled}" if doubled else ""
    )


def _is_original(t: _Target) -> bool:
    if not t.own:  # an instance's inherited method: restored means "no own attribute again"
        return t.location.attr not in getattr(t.location.owner, "__dict__", {})
    return t.current() is t.original


def _restored(targets: list[_Target]) -> list[str]:
    return [t.patch.target for t in targets if not _is_original(t)]


def _check_restore(cls: type[Plugin], targets: list[_Target]) -> CheckResult:
    for _ in range(2):
        _enable(cls)
        registry.disable(cls.name)
    wrong = _restored(targets)
    return CheckResult(
        "disabling restores the original objects (identity)",
        not wrong,
        f"not restored: {wrong}" if wrong else "",
    )


def _check_threads(cls: type[Plugin], targets: list[_Target], count: int) -> CheckResult:
    barrier = threading.Barrier(count)

    def churn() -> None:
        barrier.wait()
        for _ in range(25):
            _enable(cls)
            registry.disable(cls.name)

    workers = [threading.Thread(target=churn) for _ in range(count)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wrong = _restored(targets)
    _enable(cls)
    unwrapped = [t.patch.target for t in targets if not is_patched(t.current())]
    registry.disable(cls.name)
    ok = not wrong and not unwrapped and not _restored(targets)
    return CheckResult(
        f"enable/disable from {count} threads",
        ok,
        f"restored wrong: {wrong}, not wrapped: {unwrapped}" if not ok else "",
    )


def _check_failing_hooks(cls: type[Plugin], exercise: Callable[[], Any]) -> CheckResult:
    from autolog.testing.memory import capture

    def boom(*_args: Any) -> None:
        raise RuntimeError("injected failure in a plugin hook")

    failing = [
        dataclasses.replace(p, before=boom, after=boom, on_error=p.on_error) for p in cls.patches
    ]
    broken: type[Plugin] = type(
        f"Failing{cls.__name__}", (cls,), {"patches": failing, "_abstract": False}
    )
    saved = os.environ.pop(env.AUTOLOG_TESTING, None)
    reset_reported()
    try:
        with capture(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registry.enable(EnabledPlugin(broken(), broken.make_options()))
            try:
                exercise()
            except Exception as exc:
                return CheckResult(
                    "failing hooks never break the user's call",
                    False,
                    f"{type(exc).__name__}: {exc}",
                )
            finally:
                registry.disable(cls.name)
    finally:
        if saved is not None:
            os.environ[env.AUTOLOG_TESTING] = saved
        reset_reported()
    named = [
        w for w in caught if issubclass(w.category, AutologWarning) and cls.name in str(w.message)
    ]
    return CheckResult(
        "failing hooks never break the user's call",
        bool(named),
        "" if named else "no AutologWarning naming the plugin",
    )


_ORDERINGS: dict[str, tuple[list[str], bool]] = {
    "enable, import, call": (["enable", "import", "call"], True),
    "import, enable, call": (["import", "enable", "call"], True),
    "enable, import, enable, call": (["enable", "import", "enable", "call"], True),
    "enable, disable, import, call": (["enable", "disable", "import", "call"], False),
    "import, enable, disable, enable, call": (
        ["import", "enable", "disable", "enable", "call"],
        True,
    ),
    "enable, import, disable, call": (["enable", "import", "disable", "call"], False),
}


def _check_orderings(name: str, import_code: str, exercise_code: str) -> list[CheckResult]:
    results = []
    for label, (steps, expect_run) in _ORDERINGS.items():
        body = [
            "import autolog, autolog.testing, json",
            "store_cm = autolog.testing.capture()",
            "store = store_cm.__enter__()",
        ]
        for step in steps:
            if step == "enable":
                body.append(f"autolog.autolog(frameworks=[{name!r}])")
            elif step == "disable":
                body.append(f"autolog.disable([{name!r}])")
            elif step == "import":
                body.append(textwrap.dedent(import_code))
            else:
                body.append(textwrap.dedent(exercise_code))
        body.append("print('AUTOLOG-RUNS=' + json.dumps(len(store.runs)))")
        proc = subprocess.run(
            [sys.executable, "-c", "\n".join(body)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        marker = [line for line in proc.stdout.splitlines() if line.startswith("AUTOLOG-RUNS=")]
        if proc.returncode != 0 or not marker:
            results.append(CheckResult(f"ordering: {label}", False, proc.stderr.strip()[-500:]))
            continue
        runs = json.loads(marker[-1].split("=", 1)[1])
        ok = (runs >= 1) if expect_run else (runs == 0)
        results.append(CheckResult(f"ordering: {label}", ok, f"{runs} run(s) logged"))
    return results
