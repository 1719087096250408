"""CPU pinning for timed tests that run a server on the same machine as the training.

A tracking server (and its PostgreSQL) normally runs on another machine. When a test
starts them next to the training it times, their CPU work competes with training on this
machine's few cores and lands in the measured ratio. Pinning the server's processes to
some cores and the test process to the others stands in for that other machine:

    with pinned(os.getpid(), {0}), pinned(server.pid, {1}):
        ...  # both fits of a comparison run here, with the same single core

Linux only (``os.sched_setaffinity``); elsewhere, or with a single core, nothing is
pinned and `split` says why.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["descendants", "pin", "pinned", "restore", "split"]


def split() -> tuple[set[int], set[int]] | str:
    """``(training cores, server cores)`` from the cores this process may use, or why not."""
    if not hasattr(os, "sched_getaffinity"):
        return "this platform cannot pin processes to cores"
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return f"only {len(cores)} core available"
    half = len(cores) // 2
    return set(cores[:half]), set(cores[half:])


def descendants(pid: int) -> list[int]:
    """``pid``'s child processes, their children and so on (read from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pin(pid: int, cores: set[int], *, with_children: bool = True) -> dict[int, set[int]]:
    """Pin every thread of ``pid`` (and of its descendants) to ``cores``.

    Returns each thread's previous cores, for `restore`. Threads and processes started
    later inherit the affinity of the thread that starts them.
    """
    previous: dict[int, set[int]] = {}
    for process in [pid, *(descendants(pid) if with_children else [])]:
        try:
            threads = [int(t.name) for t in Path(f"/proc/{process}/task").iterdir()]
        except OSError:
            continue
        for tid in threads:
            try:
                previous[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, cores)
            except OSError:  # the thread ended meanwhile
                previous.pop(tid, None)
    return previous


def restore(previous: dict[int, set[int]]) -> None:
    for tid, cores in previous.items():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cores)


@contextlib.contextmanager
def pinned(pid: int, cores: set[int], *, with_children: bool = True) -> Iterator[None]:
    """`pin` for the duration of the block, then each thread's cores as they were."""
    previous = pin(pid, cores, with_children=with_children)
    try:
        yield
    finally:
        restore(previous)
