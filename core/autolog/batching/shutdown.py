"""What happens to pending data when the interpreter exits.

At exit (``atexit``) every live logger gets a last flush within its ``exit_timeout``;
retries are off by then (one attempt per request). A run autolog created and nobody ended
ends ``FINISHED``, or ``FAILED`` when an unhandled exception is ending the process. What
is not delivered by then stays in the run log, where the delivery agent (which outlives
this process) or ``autolog sync`` takes it. Then exactly one line on stderr says how many
values wait there and who delivers them.

Signals are left alone: autolog installs no handler. A SIGTERM the script handles lets it
carry on logging (the usual preemption pattern: finish the epoch, exit 0); an unhandled
one ends the process at once, like a SIGKILL, and the agent delivers the run logs and
ends the runs ``KILLED``. The ``atexit`` hook is registered on import, early, so that it
runs after the exit hooks of code that ends its runs through us.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading

from autolog.batching.flusher import ENGINE, print_exit_summary

__all__ = ["drain", "install"]

_lock = threading.Lock()
_done = False


def drain() -> None:
    """Flush everything (once per process), then report what waits in the run logs."""
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


def install() -> None:
    """Kept for callers of earlier versions: autolog no longer installs signal handlers."""


def _at_exit() -> None:
    # The interpreter is going away; nothing useful can be done with an error here.
    with contextlib.suppress(Exception):
        drain()


def _reset_after_fork() -> None:
    global _done, _lock
    _lock = threading.Lock()
    _done = False


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
