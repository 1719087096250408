"""Exception safety: what is the user's error, what is ours, and how ours is reported.

Errors raised by autolog's own code (hooks, capture, logging) are caught and reported once
per call site with a `AutologWarning` naming the plugin; training continues. Under
``AUTOLOG_TESTING=1`` they raise instead, so a test suite sees them. The user's own
exceptions never pass through here: the wrapper re-raises them untouched.
"""

from __future__ import annotations

import threading
import warnings

from autolog import env

__all__ = ["AutologWarning", "report_failure", "set_silent", "silent", "warn"]


class AutologWarning(UserWarning):
    """Something autolog could not do; the user's code carried on."""


_lock = threading.Lock()
_reported: set[tuple[str, ...]] = set()
_silent = False


def set_silent(value: bool) -> None:
    global _silent
    _silent = value


def silent() -> bool:
    return _silent


def warn(message: str, *, once_key: tuple[str, ...] | None = None, stacklevel: int = 2) -> None:
    """Warn with `AutologWarning` unless silenced; with ``once_key``, only once."""
    if once_key is not None:
        with _lock:
            if once_key in _reported:
                return
            _reported.add(once_key)
    if _silent:
        return
    warnings.warn(message, AutologWarning, stacklevel=stacklevel + 1)


def report_failure(plugin: str, site: str, exc: BaseException) -> None:
    """Report an exception raised by autolog's own code at ``site``.

    Must be called from inside the ``except`` block: under ``AUTOLOG_TESTING=1`` it
    re-raises the exception being handled.
    """
    if env.testing():
        raise exc
    warn(
        f"autolog plugin {plugin!r}: {site} failed and was skipped "
        f"({type(exc).__name__}: {exc}); your code carried on. "
        "This warning is shown once per call site.",
        once_key=(plugin, site),
        stacklevel=3,
    )


def reset_reported() -> None:
    """Forget which call sites were reported (for tests)."""
    with _lock:
        _reported.clear()
