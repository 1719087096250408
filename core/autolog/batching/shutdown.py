"""What happens to pending data when the interpreter exits or is told to terminate.

At exit (``atexit``) and on ``SIGTERM``, every live logger gets a last flush within its
``exit_timeout``; retries are off by then (one attempt per request), and what still cannot
be delivered is written to the spool. Then exactly one line on stderr says how many values
wait there and the command that delivers them.

The ``SIGTERM`` handler chains: it runs the previous Python handler afterwards, or, if
there was none, re-delivers the signal with the default action so the process still
terminates with the status its parent expects. It is installed by the first logger created
on the main thread; the ``atexit`` hook is registered on import, early, so that it runs
after the exit hooks of code that ends its runs through us.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from types import FrameType
from typing import Any

from autolog.batching.flusher import ENGINE, print_exit_summary

__all__ = ["drain", "install"]

# Reentrant: SIGTERM may arrive while the main thread is already draining at exit.
_lock = threading.RLock()
_done = False
_sigterm_installed = False
_previous_sigterm: Any = None


def drain() -> None:
    """Flush everything (once per process), then report what waits in the spool."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
    with ENGINE.lock:
        runs = list(ENGINE.runs)
    if runs:
        ENGINE.shutdown(max(run.policy.exit_timeout for run in runs))
    print_exit_summary()


def _at_exit() -> None:
    # The interpreter is going away; nothing useful can be done with an error here.
    with contextlib.suppress(Exception):
        drain()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    try:
        drain()
    finally:
        previous = _previous_sigterm
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


def install() -> None:
    """Install the SIGTERM handler (main thread only; once)."""
    global _sigterm_installed, _previous_sigterm
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        if _sigterm_installed:
            return
        try:
            previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):
            return  # not allowed here (embedded interpreter): atexit still covers exit
        _previous_sigterm = previous
        _sigterm_installed = True


def _reset_after_fork() -> None:
    global _done, _lock
    _lock = threading.RLock()
    _done = False


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
