"""Run lifecycle: which run a patched call logs into, and when that run starts and ends.

The outermost call of a run-owning patch opens a run: the user's active run when there is
one (left open afterwards), else a new run, ended FINISHED, FAILED or KILLED with the call.
Calls nested inside it either pass through untouched or join its run, as the patch says.
Nesting is tracked in a `contextvars` variable, so two threads training at once get
two runs and never see each other's.

Where runs live is a `RunBackend`: MLflow through the batching layer by default,
an in-memory store under `autolog.testing`.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from autolog.plugin import RunSink

__all__ = [
    "ActiveCall",
    "ManagedSink",
    "RunBackend",
    "current_call",
    "get_backend",
    "run_for_instance",
    "set_backend",
]


class ManagedSink(RunSink, Protocol):
    """A run sink that the session can also end, or let go of."""

    def end_run(self, status: str = "FINISHED", timeout: float | None = None) -> None:
        """Flush, then end a run this sink created. With a ``timeout``, the wait ends
        once the store has made no progress for that long (`END_OF_RUN_TIMEOUT`); what
        is left is delivered from the run log."""
        ...

    def close(self, timeout: float | None = None) -> None:
        """Flush, then let go of a run this sink did not create; the run stays open."""
        ...


class RunBackend(Protocol):
    """Where runs are created and written."""

    def active_run_id(self) -> str | None:
        """The run the user has open (``mlflow.start_run()``, ``MLFLOW_RUN_ID``), if any."""
        ...

    def open(self, run_id: str | None, tags: Mapping[str, str]) -> ManagedSink:
        """A sink for ``run_id``, or for a new run (created with ``tags``) when ``None``."""
        ...

    def prepare(self, *, log_models: bool = False) -> None:
        """Start, in the background, the one-off work the first run would otherwise do.

        Called when autologging is enabled, with ``log_models`` true when an enabled
        plugin may package models; must return at once and never raise.
        """
        ...


#: Seconds the end of a run waits for the tracking store before spooling what is left,
#: counted from the last sign of progress: while its requests keep completing (or a model
#: is being packaged) the MLflow backend waits on, up to its ``END_OF_RUN_PATIENCE`` in
#: all, so that a run is complete in the store when the call returns.
END_OF_RUN_TIMEOUT = 5.0


@dataclass
class ActiveCall:
    """A patched call in progress, as seen by calls nested inside it."""

    plugin: str
    sink: ManagedSink


_current: contextvars.ContextVar[ActiveCall | None] = contextvars.ContextVar(
    "autolog_current_call", default=None
)


def current_call() -> ActiveCall | None:
    return _current.get()


def enter(call: ActiveCall) -> contextvars.Token[ActiveCall | None]:
    return _current.set(call)


def leave(token: contextvars.Token[ActiveCall | None]) -> None:
    _current.reset(token)


# The backend ---------------------------------------------------------------------------

_backend: RunBackend | None = None
_backend_lock = threading.Lock()


def get_backend() -> RunBackend:
    global _backend
    with _backend_lock:
        if _backend is None:
            from autolog.mlflow_backend import MlflowBackend

            _backend = MlflowBackend()
        return _backend


def set_backend(backend: RunBackend | None) -> RunBackend | None:
    """Install ``backend`` (``None``: back to MLflow); returns the previous one."""
    global _backend
    with _backend_lock:
        previous, _backend = _backend, backend
        return previous


# Instance -> run memory, for "evaluate after fit logs into the fit's run" -------------


class _InstanceRuns:
    """Remembers the sink of the last run-owning call per live instance.

    Keyed by ``id`` with a weakref finalizer, because framework objects are not always
    hashable; instances that cannot be weakly referenced are simply not remembered.
    """

    def __init__(self) -> None:
        self._sinks: dict[int, tuple[weakref.ref[Any], ManagedSink]] = {}
        self._lock = threading.Lock()

    def remember(self, instance: Any, sink: ManagedSink) -> None:
        if instance is None:
            return
        key = id(instance)

        def forget(dead: weakref.ref[Any]) -> None:
            self._forget(key, dead)

        try:
            ref = weakref.ref(instance, forget)
        except TypeError:
            return
        with self._lock:
            self._sinks[key] = (ref, sink)

    def lookup(self, instance: Any) -> ManagedSink | None:
        if instance is None:
            return None
        with self._lock:
            entry = self._sinks.get(id(instance))
        if entry is None or entry[0]() is not instance:
            return None
        return entry[1]

    def _forget(self, key: int, ref: weakref.ref[Any]) -> None:
        with self._lock:
            entry = self._sinks.get(key)
            if entry is not None and entry[0] is ref:
                del self._sinks[key]

    def clear(self) -> None:
        with self._lock:
            self._sinks.clear()


instance_runs = _InstanceRuns()


def run_for_instance(instance: Any) -> str | None:
    """The id of the run the last run-owning call on ``instance`` logged into."""
    sink = instance_runs.lookup(instance)
    return None if sink is None else sink.run_id


def status_for(exc: BaseException | None) -> str:
    """The MLflow run status for a call that ended with ``exc`` (``None``: success)."""
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED"
    return "FAILED"
