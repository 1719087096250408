"""autolog's warm-up thread: one piece of work after the other, once per key."""

from __future__ import annotations

import threading
import time

from autolog import warmup


def _wait_for_idle(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(t.name == warmup.THREAD_NAME for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the warm-up thread never finished"
        time.sleep(0.01)


def test_work_runs_once_per_key_one_piece_at_a_time_in_one_thread() -> None:
    seen: list[tuple[str, str]] = []
    running = threading.Semaphore(1)
    overlapped = []

    def work(label: str) -> None:
        if not running.acquire(blocking=False):
            overlapped.append(label)
        try:
            time.sleep(0.02)
            seen.append((label, threading.current_thread().name))
        finally:
            running.release()

    token = object()
    for label in ("a", "b", "a", "c"):
        warmup.submit((token, label), lambda label=label: work(label))
    _wait_for_idle()

    assert seen == [(label, warmup.THREAD_NAME) for label in ("a", "b", "c")]
    assert overlapped == []


def test_a_failing_piece_does_not_stop_the_next_one() -> None:
    done = threading.Event()
    token = object()

    def broken() -> None:
        raise RuntimeError("boom")

    warmup.submit((token, "broken"), broken)
    warmup.submit((token, "next"), done.set)
    assert done.wait(10)
    _wait_for_idle()


def test_the_thread_starts_again_for_work_that_arrives_after_it_ended() -> None:
    token = object()
    first, second = threading.Event(), threading.Event()
    warmup.submit((token, 1), first.set)
    assert first.wait(10)
    _wait_for_idle()
    warmup.submit((token, 2), second.set)
    assert second.wait(10)
