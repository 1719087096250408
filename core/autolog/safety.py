"""Exception safety: what is the user's error, what is ours, and how ours is reported.

Errors raised by autolog's own code (hooks, capture, logging) are caught and reported once
per call site with a `AutologWarning` naming the plugin; training continues. Under
``AUTOLOG_TESTING=1`` they raise instead, so a test suite sees them. The user's own
exceptions never pass through here: the wrapper re-raises them untouched.

How autolog's warnings look on screen is decided here too: one line, ``autolog: <message>``,
without Python's ``file:line: AutologWarning:`` header and the echoed source line, which
would point into autolog rather than at anything the user wrote. Long exception details
inside a message (a connection error's whole chain) are cut to their type; ``AUTOLOG_DEBUG=1``
prints them whole, with where the warning came from, and the ``autolog`` logger always has
them at DEBUG. This is a `warnings.showwarning` hook that handles `AutologWarning` (and its
subclasses) only and hands every other warning to the hook it replaced; the warnings
themselves are ordinary: filters, ``pytest.warns`` and ``catch_warnings(record=True)`` see
the same objects, with the full message, as before.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import warnings
from typing import Any, TextIO

from autolog import env

__all__ = ["AutologWarning", "report_failure", "set_silent", "silent", "warn"]

_log = logging.getLogger("autolog")


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
    warnings.warn(_prefixed(message), AutologWarning, stacklevel=stacklevel + 1)


def _prefixed(message: str) -> str:
    """Every message of autolog's starts ``autolog: ``, so it is clear whose it is."""
    if message.startswith("autolog: "):
        return message
    if message.startswith("autolog "):  # "autolog could not..." -> "autolog: could not..."
        return f"autolog: {message.removeprefix('autolog ')}"
    return f"autolog: {message}"


def report_failure(plugin: str, site: str, exc: BaseException) -> None:
    """Report an exception raised by autolog's own code at ``site``.

    Must be called from inside the ``except`` block: under ``AUTOLOG_TESTING=1`` it
    re-raises the exception being handled.
    """
    if env.testing():
        raise exc
    warn(
        f"plugin {plugin!r}: {site} failed and was skipped "
        f"({type(exc).__name__}: {exc}); your code carried on. "
        "This warning is shown once per call site.",
        once_key=(plugin, site),
        stacklevel=3,
    )


def reset_reported() -> None:
    """Forget which call sites were reported (for tests)."""
    with _lock:
        _reported.clear()


# -- how autolog's warnings are shown ------------------------------------------------------

_DETAIL_LIMIT = 80  # an exception's text longer than this is cut to its type on screen
_DETAIL_START = re.compile(r"\((\w+(?:Error|Exception|Timeout|Failure|Warning|Exit)): ")


def short_message(message: str) -> str:
    """``message`` with each long ``(SomeError: ...)`` cut to ``(SomeError)``.

    The text of an exception is often a chain (``... (Caused by NewConnectionError(...))``)
    that was cut at a fixed length, so its parentheses may not balance: the parentheses
    the cut left open are closed again after the type, where the original closed them.
    """
    out: list[str] = []
    pos = 0
    cut = False
    while (match := _DETAIL_START.search(message, pos)) is not None:
        end, depth = match.end(), 1
        while end < len(message) and depth:
            depth += {"(": 1, ")": -1}.get(message[end], 0)
            end += 1
        detail = message[match.end() : end - 1 if not depth else end]
        if len(detail) <= _DETAIL_LIMIT:
            out.append(message[pos:end])
        else:
            out.append(f"{message[pos : match.start()]}({match.group(1)})")
            cut = True
        pos = end
    out.append(message[pos:])
    text = "".join(out)
    # A cut detail that held an unclosed "(" took a ")" of the text around it: give it back
    # where the detail was, so the sentence's own parentheses still pair up.
    missing = text.count("(") - text.count(")")
    if cut and missing > 0:
        at = text.rfind(")", 0, len(text) - len(out[-1])) + 1
        text = text[:at] + ")" * missing + text[at:]
    if cut:
        text = f"{text.rstrip()} (AUTOLOG_DEBUG=1 shows the details.)"
    return text


def format_warning(message: Warning | str, filename: str, lineno: int) -> str:
    """The line shown for one of autolog's warnings (without the newline)."""
    text = str(message)
    if not text.startswith("autolog: "):
        text = _prefixed(text)
    if env.debug():
        return f"{text} [{filename}:{lineno}]"
    return short_message(text)


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    if not (isinstance(category, type) and issubclass(category, AutologWarning)):
        _previous_showwarning(message, category, filename, lineno, file, line)
        return
    _log.debug("%s (%s:%d)", message, filename, lineno)
    stream = file if file is not None else sys.stderr
    if stream is None:  # pythonw, or stderr closed: nowhere to show it
        return
    # A closed or broken stream: the warning is best-effort, like Python's own.
    with contextlib.suppress(OSError, ValueError):
        stream.write(format_warning(message, filename, lineno) + "\n")


_previous_showwarning: Any = warnings.showwarning


def install_warning_format() -> None:
    """Show autolog's warnings as ``autolog: ...`` lines (done when autolog is imported)."""
    global _previous_showwarning
    if warnings.showwarning is not _show:
        _previous_showwarning = warnings.showwarning
        warnings.showwarning = _show


install_warning_format()
