"""How the batching layer tells the user about data it could not take as given.

Invalid user data is never raised to the caller: each problem becomes one
`InvalidDataWarning` per (run, kind, key), so a metric logged with a bad name a
million times warns once. The warning object carries the kind, key and reason, which lets
tests and tools read the report without parsing the message.
"""

from __future__ import annotations

import contextlib
import threading
import warnings

from autolog import safety
from autolog.safety import AutologWarning

__all__ = ["AutologWarning", "InvalidDataWarning", "Reporter"]


class InvalidDataWarning(AutologWarning):
    """An item handed to the batching layer was sanitized, or dropped, or the store refused it."""

    def __init__(self, message: str, *, kind: str, key: object, reason: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key
        self.reason = reason


def _emit(warning: Warning) -> None:
    if safety.silent():
        return
    # A warnings filter set to "error" would raise here, on a background thread where
    # nobody can catch it; the report is best-effort, the data path must go on.
    with contextlib.suppress(Exception):
        warnings.warn(warning, stacklevel=3)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class Reporter:
    """Reports problems with one run's data, once per (kind, key, topic)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()

    def _first(self, kind: str, key: object, topic: str) -> bool:
        mark = (kind, _short(key, 300), topic)
        with self._lock:
            if mark in self._seen:
                return False
            self._seen.add(mark)
            return True

    def invalid(self, kind: str, key: object, reason: str, *, action: str = "dropped") -> None:
        """``key``'s item is invalid; ``action`` says what was done (dropped, truncated...)."""
        if self._first(kind, key, action):
            _emit(
                InvalidDataWarning(
                    f"autolog: {kind} {_short(key)} of {self.label} {action}: {reason}. "
                    "Shown once per key.",
                    kind=kind,
                    key=key,
                    reason=reason,
                )
            )

    def param_conflict(self, key: str, old: str, new: str) -> None:
        if self._first("param", key, "conflict"):
            reason = f"already logged as {_short(old)}, new value {_short(new)} ignored"
            _emit(
                InvalidDataWarning(
                    f"autolog: param {key!r} of {self.label} re-logged with a different value: "
                    f"{reason} (MLflow params cannot change). Shown once per key.",
                    kind="param",
                    key=key,
                    reason=reason,
                )
            )

    def problem(self, topic: str, message: str) -> None:
        """A run-level problem (store unreachable, work that failed); once per topic."""
        if self._first("run", "", topic):
            _emit(AutologWarning(f"autolog: {self.label}: {message}"))
