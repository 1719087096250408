"""The tunable behaviour of a `autolog.batching.BatchLogger`, validated up front.

Every knob is a keyword argument of ``BatchLogger(...)``/``BatchLogger.start_run(...)``; an
unknown name raises `TypeError` listing the valid ones, a bad value raises
`ValueError`. These are programming errors in the code that builds the logger,
not user data, so they are the one thing the batching layer raises.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["FSYNC_POLICIES", "BatchPolicy"]

FSYNC_POLICIES = ("flush", "always", "never")


@dataclasses.dataclass(frozen=True)
class BatchPolicy:
    """How a logger batches, retries and spools.

    Attributes:
        flush_interval: Longest time (s) a logged value waits before it is sent.
            ``None``: 1 s for an HTTP tracking server, whose requests go as soon as they
            fill (the server does their work in its own process, beside training); 5 s
            for local stores, where what was logged in that time leaves together, since
            their writes run in this process and share its CPU and GIL with the caller.
            A call's last values, `flush` and a run's end do not wait for it.
        max_queue_items: Undelivered values one run may hold in memory; beyond that its
            pending data spills to the spool (and is replayed when the store answers).
        retry_timeout: How long (s) one request is retried on transient failures
            (connection refused, timeouts, HTTP 408/425/429/502/503/504) before its data
            goes to the spool. An HTTP 500 is tried three times, then the request is split
            to find the item the server chokes on.
        retry_initial_delay: First backoff delay (s); doubles per attempt, with jitter.
        retry_max_delay: Cap (s) on one backoff delay.
        request_timeout: Timeout (s) of one HTTP request to a tracking server.
        max_in_flight: Requests of one run in flight at once (metric-only requests may
            overlap; params, tags, artifacts and run end stay ordered). ``None``: 4 for an
            HTTP tracking server, 1 for local stores (SQLite serializes writers anyway).
        exit_timeout: At interpreter exit, how long (s) pending data may take to reach
            the store before the rest is spooled.
        spool_dir: Where the run log lives (everything logged is appended there first,
            and what is not delivered waits there for the delivery agent or ``autolog
            sync``); ``None`` reads ``AUTOLOG_SPOOL_DIR`` (default: the user cache dir)
            when it is first needed.
        log_interval: Longest time (s) a logged value waits in memory before it is
            appended to the run log, where it survives the death of this process.
        fsync: When the run log is forced to disk, which covers a power loss as well:
            ``"flush"`` (at `flush`, `close`, `end_run` and exit), ``"always"`` (every
            append, about every ``log_interval``), or ``"never"`` (the page cache, which
            outlives the process but not the machine).
    """

    flush_interval: float | None = None
    max_queue_items: int = 500_000
    retry_timeout: float = 60.0
    retry_initial_delay: float = 0.25
    retry_max_delay: float = 8.0
    request_timeout: float = 30.0
    max_in_flight: int | None = None
    exit_timeout: float = 10.0
    spool_dir: Path | None = None
    log_interval: float = 0.01
    fsync: str = "flush"

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> BatchPolicy:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(
                f"unknown BatchLogger policy option(s) {', '.join(map(repr, unknown))}; "
                f"valid options: {', '.join(names)}"
            )
        values = dict(kwargs)
        if values.get("spool_dir") is not None:
            spool = values["spool_dir"]
            if not isinstance(spool, (str, os.PathLike)):
                raise TypeError(f"spool_dir must be a path, got {type(spool).__name__}")
            values["spool_dir"] = Path(os.fspath(spool)).expanduser()
        policy = cls(**values)
        policy._check()
        return policy

    def _check(self) -> None:
        positive = (
            "flush_interval",
            "retry_timeout",
            "retry_initial_delay",
            "retry_max_delay",
            "request_timeout",
            "log_interval",
        )
        for name in positive:
            value = getattr(self, name)
            if value is None and name == "flush_interval":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if isinstance(self.exit_timeout, bool) or not isinstance(self.exit_timeout, (int, float)):
            raise ValueError(f"exit_timeout must be a number, got {self.exit_timeout!r}")
        if self.exit_timeout < 0:
            raise ValueError(f"exit_timeout must be >= 0, got {self.exit_timeout!r}")
        for name, low in (("max_queue_items", 1000), ("max_in_flight", 1)):
            value = getattr(self, name)
            if value is None and name == "max_in_flight":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.fsync not in FSYNC_POLICIES:
            raise ValueError(
                f"fsync must be one of {', '.join(map(repr, FSYNC_POLICIES))}, got {self.fsync!r}"
            )
        if self.log_interval > 1.0:
            raise ValueError(f"log_interval must be at most 1 second, got {self.log_interval!r}")
        if self.max_in_flight is not None and self.max_in_flight > 16:
            raise ValueError(f"max_in_flight must be at most 16, got {self.max_in_flight}")
