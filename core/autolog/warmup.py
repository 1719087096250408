"""The one background thread that does autolog's one-off work ahead of time.

Warming up means filling caches before the first run needs them (the git commit of the
run's tags, the REST client, the map of installed distributions model packaging uses). It
runs in a single daemon thread, ``autolog-warm-up``, one piece after the other, starting
when work arrives and ending when there is none left.

Work submitted here must not import packages the script may import too: two threads
importing the same package at once can meet in an import cycle, and Python then hands one
of them a half-initialised module (an ``ImportError`` naming a "partially initialized
module"), which MLflow's package layout does trigger. Callers import on their own thread
first, then submit the work that only runs code.

Work is best effort: an exception is logged at debug level and dropped, since the real
use of the same thing reports it properly.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable

__all__ = ["THREAD_NAME", "submit"]

THREAD_NAME = "autolog-warm-up"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_queue: deque[Callable[[], object]] = deque()
_submitted: set[Hashable] = set()
_thread: threading.Thread | None = None


def submit(key: Hashable, work: Callable[[], object]) -> None:
    """Run ``work`` in the warm-up thread, once per ``key`` for the life of the process."""
    global _thread
    with _lock:
        if key in _submitted:
            return
        _submitted.add(key)
        _queue.append(work)
        if _thread is None:
            _thread = threading.Thread(target=_drain, name=THREAD_NAME, daemon=True)
            _thread.start()


def _drain() -> None:
    global _thread
    while True:
        with _lock:
            if not _queue:
                _thread = None
                return
            work = _queue.popleft()
        try:
            work()
        except Exception as exc:  # best effort: the real use reports it
            _log.debug("autolog warm-up step %r failed: %r", work, exc)


def _after_fork_in_child() -> None:
    # The thread does not exist in a forked child: start a new one for new work.
    global _lock, _thread
    _lock = threading.Lock()
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
