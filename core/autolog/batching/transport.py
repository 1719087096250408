"""The delivery policy: retries, and isolating the items a store refuses.

Every write goes through a store writer (`autolog.batching.stores`), one attempt at a
time; this module decides what happens after a failure, the same for every writer:
exponential backoff with jitter on connection errors, timeouts, HTTP 429 and 5xx, until
the policy's deadline (`Retry`, `call`). What a failure means is `classify`'s answer
(`autolog.batching.outcomes`).

When the store refuses a request (HTTP 400: some item it does not accept), the request is
halved until the offending items stand alone; the rest is delivered and the offenders are
reported (`send_chunk`). Errors that concern the whole run (deleted, missing, forbidden)
are not split: the data goes to the spool instead.

`client_for` and `is_http` are `autolog.batching.stores`' own, named here as well for the
callers that knew them here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from autolog.batching.chunks import Chunk
from autolog.batching.outcomes import Outcome, TransientHTTPError, classify
from autolog.batching.stores import StoreWriter, client_for, is_http

__all__ = [
    "Outcome",
    "Retry",
    "SendResult",
    "TransientHTTPError",
    "call",
    "classify",
    "client_for",
    "is_http",
    "send_chunk",
]

# A server that answers 500 may be hitting a transient database lock, or choking on one
# item: retry a few times, then split the request to find out.
SERVER_ERROR_ATTEMPTS: Final = 3
_SLEEP_SLICE: Final = 0.1


@dataclasses.dataclass
class Retry:
    """How long and how hard to retry one request."""

    timeout: float  # seconds one request is retried on transient failures
    initial_delay: float
    max_delay: float
    abort: threading.Event  # set: give up now (flush timeout, memory spill, exit)
    single_attempt: Callable[[], bool] = lambda: False  # true at interpreter exit
    # A moment after which to stop retrying whatever the deadline (the run is ending);
    # read at every check, so it applies to requests already in their retry loop.
    cutoff: Callable[[], float] = lambda: math.inf
    failed: Callable[[], None] = lambda: None  # told of every transient failure
    # Set when `abort` is set or the cutoff moves: ends a backoff sleep at once. Without
    # one, a sleep ends at once on `abort` and notices the cutoff within a slice.
    wake: threading.Event | None = None

    def give_up(self, deadline: float) -> bool:
        return (
            self.abort.is_set()
            or self.single_attempt()
            or time.monotonic() >= min(deadline, self.cutoff())
        )

    def sleep(self, attempt: int, deadline: float) -> None:
        delay = min(self.max_delay, self.initial_delay * (2**attempt))
        delay = delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"
        until = min(time.monotonic() + delay, deadline)
        # `wake` ends the wait when the cutoff moves or the request is aborted; the
        # slices are a backstop for whoever moves them without setting it.
        while not self.abort.is_set():
            left = min(until, self.cutoff()) - time.monotonic()
            if left <= 0:
                return
            wake = self.wake
            event = wake if wake is not None and not wake.is_set() else self.abort
            event.wait(min(left, _SLEEP_SLICE))


def call(fn: Callable[[], Any], retry: Retry) -> tuple[Outcome, BaseException | None]:
    """Run ``fn`` with retries; ``("ok", None)`` or the final outcome and error."""
    deadline = time.monotonic() + retry.timeout
    attempt = 0
    server_errors = 0
    while True:
        try:
            fn()
            return "ok", None
        except Exception as exc:
            outcome = classify(exc)
            if outcome in ("transient", "server"):
                retry.failed()
            if outcome == "server":
                server_errors += 1
                if server_errors >= SERVER_ERROR_ATTEMPTS:
                    return "item", exc
                if retry.abort.is_set() or retry.single_attempt():
                    return "transient", exc
            elif outcome != "transient":
                return outcome, exc
            if retry.give_up(deadline):
                return "transient", exc
            retry.sleep(attempt, deadline)
            attempt += 1


@dataclasses.dataclass
class SendResult:
    delivered: int = 0
    rejected: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    undelivered: list[Chunk] = dataclasses.field(default_factory=list)
    failure: Outcome | None = None  # why ``undelivered`` is not empty
    error: BaseException | None = None


def send_chunk(writer: StoreWriter, run_id: str, chunk: Chunk, retry: Retry) -> SendResult:
    """Deliver ``chunk`` through ``writer``, isolating items the store refuses.

    See `SendResult`.
    """
    result = SendResult()
    todo = [chunk]
    while todo:
        part = todo.pop(0)
        outcome, error = call(functools.partial(writer.write_chunk, run_id, part), retry)
        if outcome == "ok":
            result.delivered += len(part)
        elif outcome == "item":
            if len(part) == 1:
                kind, item = next(part.entities())
                result.rejected.append((kind, str(item[0]), _reason(error)))
            else:
                todo[0:0] = part.halves()
        else:
            result.undelivered = [part, *todo]
            result.failure = outcome
            result.error = error
            break
    return result


def _reason(error: BaseException | None) -> str:
    text = str(error) if error is not None else "refused"
    message = getattr(error, "message", None)
    if message is not None:
        text = str(message)
    text = " ".join(text.split())
    return f"the store refused it ({text[:300]})"
