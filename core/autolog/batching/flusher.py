"""The flusher: the background thread that turns what callers log into requests.

One daemon thread serves every `BatchLogger` of the process. Every ``log_interval`` it
reads each open run's inbox (`autolog.batching.inbox`), appends what it accepted to the
run's log (`autolog.batching.runlog`), packs it into ``log_batch``-sized requests and
queues them, which `autolog.batching.scheduler` hands to the sender threads of the run's
store (`autolog.batching.senders`). `Engine` is those parts together (each a class of its
own module, on the shared state of `autolog.batching.engine.EngineCore`), plus this
thread's loop; `ENGINE` is the process's one engine, and `print_exit_summary` the lines
it leaves at exit (`autolog.batching.lifecycle`, `autolog.batching.shutdown`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Final

from autolog.batching import agent, stores
from autolog.batching.engine import in_worker_thread
from autolog.batching.inbox import InboxReader
from autolog.batching.lifecycle import Lifecycle
from autolog.batching.runlog import RunLogWriter
from autolog.batching.scheduler import Scheduler
from autolog.batching.senders import Senders
from autolog.batching.state import (
    Op,
    ReplayOp,
    RunState,
)

_DRAIN_SLICE: Final = 20_000  # records per run per pass, so one busy run cannot starve others
_AGENT_CHECK_EVERY: Final = 1.0  # seconds between looks at whether the agent still runs

__all__ = ["ENGINE", "Engine", "RunState", "in_worker_thread", "print_exit_summary"]


class Engine(InboxReader, RunLogWriter, Scheduler, Senders, Lifecycle):
    """The batching engine: its parts together, and the flusher thread's loop."""

    def _flusher_loop(self) -> None:
        checked = time.monotonic()
        while True:
            self.wake.wait(self._next_timeout())
            self.wake.clear()
            if time.monotonic() - checked > _AGENT_CHECK_EVERY:
                checked = time.monotonic()
                agent.AGENT.check()
            with self.lock:
                snapshot = list(self.runs)
            for index, run in enumerate(snapshot):
                if index:
                    # Let callers' threads run between runs; this thread is never urgent.
                    # (After the last one, waiting for the next pass lets them run anyway.)
                    time.sleep(0)
                try:
                    self._service(run)
                except Exception as exc:  # our bug: keep the thread alive, tell the caller
                    self._internal_error(run, "the flusher", exc)

    def _next_timeout(self) -> float:
        now = time.monotonic()
        timeout = 5.0
        with self.lock:
            for run in self.runs:
                # Appends only wake the flusher every `wake_every` records: polling at the
                # log interval is what bounds how long a value waits before it is in the
                # run log, where it survives this process.
                timeout = min(timeout, run.flush_interval)
                if not run.closed:
                    timeout = min(timeout, run.policy.log_interval)
                if len(run.builder) or run.held:
                    oldest = run.held_since if run.held else run.builder_since
                    timeout = min(timeout, oldest + run.flush_interval - now)
                if run.spooling and not run.replaying:
                    timeout = min(timeout, run.next_recovery - now)
                if run.inbox:
                    timeout = min(timeout, run.flush_interval)
        return max(timeout, 0.005)

    def _service(self, run: RunState) -> None:
        new_ops: list[Op] = []
        budget = _DRAIN_SLICE
        inbox = run.inbox
        run.previous_pass, run.this_pass = run.this_pass, time.monotonic()
        if run.wake_at:
            run.wake_at = run.wake_every
        if not run.journal_opened and inbox:
            self._open_journal(run)
        # When the oldest value not yet in a request arrived (for requests held back).
        started = run.builder_since if len(run.builder) else run.previous_pass
        while inbox and (budget > 0 or run.force_spool):
            budget -= 1
            record = inbox.popleft()
            try:
                self._ingest(run, record, new_ops)
            except Exception as exc:
                self._internal_error(run, "validating logged data", exc)
        if inbox:
            self.wake.set()  # come back for the rest after the other runs had a turn
        try:
            self._log_pass(run, new_ops)
        except Exception as exc:
            self._internal_error(run, "writing the run log", exc)
        # Not only when the inbox is empty: a training loop logging every step keeps it
        # from ever being empty, and its values would wait for the run's end.
        oldest = run.held_since if run.held else run.builder_since
        due = time.monotonic() - oldest >= run.flush_interval
        if len(run.builder) and due:
            self._cut(run, new_ops)
        with self.lock:
            try:
                self._track(run, new_ops)
            except Exception as exc:  # the acks wait; the operations must not
                self._internal_error(run, "counting the run log's records", exc)
            new_ops = self._release(run, new_ops, due, started)
            run.ops.extend(new_ops)
            run.pending_values += sum(op.values for op in new_ops)
            if run.force_spool and not inbox:
                run.force_spool = False
                self._detach_inflight(run)
            if not run.spooling and run.pending_values > run.policy.max_queue_items:
                self._enter_spooling(
                    run,
                    f"more than {run.policy.max_queue_items} values are waiting for the store",
                )
                run.abort_requests()
            if (
                run.spooling
                and not run.closed
                and not run.replaying
                and not run.inflight
                and run.detached_create is None
                and time.monotonic() >= run.next_recovery
            ):
                run.ops.appendleft(ReplayOp())
            self._pump(run)
            if run.closed and not run.ops and not run.inflight and not inbox:
                self._retire(run)


ENGINE = Engine()


def _after_fork_in_child() -> None:
    ENGINE.reset_after_fork()
    stores.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _amount(values: int, artifacts: int) -> str:
    if not values and not artifacts:
        return "the creation or the end of a run"  # a log holding only those waits too
    return f"{values} logged value(s)" + (f" and {artifacts} artifact(s)" if artifacts else "")


def print_exit_summary(stream: Any = None) -> bool:
    """A line on stderr if data waits in the spool, one if data was lost; whether it printed."""
    values, artifacts, dirs = ENGINE.spooled_summary()
    lines = []
    if dirs:
        ordered = sorted(str(d) for d in dirs)
        where = " and ".join(ordered)
        command = " and ".join(f"autolog sync {d}" for d in ordered)
        pid = agent.AGENT.pid
        if pid is not None:
            lines.append(
                f"autolog: {_amount(values, artifacts)} could not reach the tracking store "
                f"yet and wait in {where}; the delivery agent (pid {pid}) delivers them "
                f"once this process has exited (or run: {command})"
            )
        else:
            lines.append(
                f"autolog: {_amount(values, artifacts)} could not reach the tracking store "
                f"and wait in {where}; deliver them with: {command}"
            )
    with ENGINE.lock:
        lost = sorted(ENGINE.lost.items())
    for directory, (values, artifacts, why) in lost:
        lines.append(
            f"autolog: {_amount(values, artifacts)} were lost: the tracking store could not "
            f"take them, nor the spool in {directory} ({why})"
        )
    if not lines:
        return False
    stream = stream or sys.stderr
    with contextlib.suppress(Exception):
        stream.write("".join(line + "\n" for line in lines))
        stream.flush()
    return True
