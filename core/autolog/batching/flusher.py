"""The process-wide background machinery behind every `BatchLogger`.

One daemon *flusher* thread drains what callers enqueued (across all loggers), validates
it item by item, packs it into ``log_batch``-sized chunks and queues per-run operations.
A small pool of daemon *sender* threads per tracking store performs them (and stops once
no run uses that store any more). Per run, the operations form a FIFO: run creation,
chunks with params or tags, deferred work and run end go one at a time in order; chunks
holding only metrics may overlap (up to the policy's ``max_in_flight``), as the store
orders a metric's history by timestamp, step and value, not by arrival, and the flusher
makes the caller-recorded timestamps of one key and step strictly increasing. After a
failed request they too go one at a time, until one succeeds: an outage is retried by one
request, not by all. Artifact uploads overlap with metric chunks but not with each other
(a later upload may overwrite the same path). While the store answers, the run's end
overlaps the last metric requests and uploads too: the store keeps what reaches a run
after its end, and what fails is spooled followed by the end once more.

When a run's data cannot be delivered (retries exhausted, run refused, too much pending,
``flush`` timed out, interpreter exiting), the run switches to *spooling*: from then on its
operations are appended, in the same order, to its spool file, and later replayed from it
(periodically, and on ``close``/``end_run``/exit) until the file is delivered.

Locking: callers touch only their logger's inbox (a ``deque``: appends are atomic) and
never take a lock. Operation queues and in-flight counts are guarded by ``Engine.lock``;
the flusher's validation state is touched by the flusher thread alone.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeGuard, cast

from autolog import env
from autolog.batching import agent, runs, sql_bulk, transport, validation
from autolog.batching.chunks import Chunk
from autolog.batching.spool import SpoolBusy, SpoolFile, ensure_dir
from autolog.batching.state import (
    BAD,
    CONTROL,
    ENDING_RETRY_GRACE,
    METRIC,
    METRICS,
    PARAM,
    RECOVERY_FIRST,
    SEND_NOW,
    TAG,
    WAKE_AT_LOCAL,
    ArtifactOp,
    Barrier,
    BatchOp,
    CreateOp,
    EndOp,
    Op,
    ReplayOp,
    RunState,
    SubmitOp,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["ENGINE", "Engine", "RunState", "in_worker_thread", "print_exit_summary"]

_DRAIN_SLICE: Final = 20_000  # records per run per pass, so one busy run cannot starve others
_RECOVERY_MAX: Final = 60.0
_AGENT_CHECK_EVERY: Final = 1.0  # seconds between looks at whether the agent still runs

_worker = threading.local()


def _checked_step(step: object) -> TypeGuard[int]:
    """Whether ``step`` needs no `validation.metric_step`: a plain int that fits 64 bits.

    The per-value paths skip that call for the usual step; a larger int would make the
    store refuse the whole request, so it goes to `validation.metric_step` to be reported.
    """
    return type(step) is int and validation.INT64_MIN <= step <= validation.INT64_MAX


def in_worker_thread() -> bool:
    return bool(getattr(_worker, "active", False))


class Endpoint:
    """Sender threads for one client (one tracking store)."""

    def __init__(self, engine: Engine, make_client: Callable[[], MlflowClient]) -> None:
        self.engine = engine
        self._make_client = make_client
        self._client: MlflowClient | None = None
        self._client_lock = threading.Lock()
        self.tasks: queue.SimpleQueue[tuple[RunState, Op] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def client(self) -> MlflowClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def ensure_threads(self, count: int) -> None:
        while len(self.threads) < min(count, 16):
            thread = threading.Thread(
                target=self.engine.sender_loop,
                args=(self,),
                name=f"autolog-sender-{len(self.threads)}",
                daemon=True,
            )
            self.threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Let each thread finish the task it holds, then exit.

        Called once no run uses this store any more: a long-lived process that logs to
        many stores (or through many clients) would otherwise keep idle threads for each
        of them for good. A later run of the same store makes a new endpoint.
        """
        for _ in self.threads:
            self.tasks.put(None)


# -- the engine -------------------------------------------------------------------------


class Engine:
    def __init__(self) -> None:
        self._init()

    def _init(self) -> None:
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.runs: list[RunState] = []
        self.endpoints: dict[tuple[Any, ...], Endpoint] = {}
        self.thread: threading.Thread | None = None
        self.exiting = False
        self.left_in_spool: dict[Path, tuple[int, int]] = {}  # closed files: (values, artifacts)
        # What neither the store nor the spool took, by spool dir: (values, artifacts, why).
        self.lost: dict[Path, tuple[int, int, str]] = {}

    def is_exiting(self) -> bool:
        return self.exiting

    # -- registration and waking --

    def register(self, run: RunState) -> None:
        with self.lock:
            self.runs.append(run)
        self.ensure_started(run)

    def nudge(self, run: RunState) -> None:
        """Called by a logger when its inbox is long, or it needs an answer (flush...)."""
        if run.wake_at == 0:
            run.wake_at = run.wake_every
            self.ensure_started(run)
        else:
            # Until the flusher drains, further appends need not wake it again.
            run.wake_at = len(run.inbox) + run.wake_every
        self.wake.set()

    # -- the flusher thread --

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
            for run in snapshot:
                try:
                    self._service(run)
                except Exception as exc:  # our bug: keep the thread alive, tell the caller
                    self._internal_error(run, "the flusher", exc)
                # Let callers' threads run between runs; this thread is never urgent.
                time.sleep(0)

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

    def _release(self, run: RunState, new_ops: list[Op], due: bool, started: float) -> list[Op]:
        """The operations to queue now; full requests for a local store wait for the interval.

        A local store's writes run in this process, beside the caller: what was logged in
        one ``flush_interval`` leaves together (see `state.WAKE_AT_LOCAL`), as it did when
        values waited in the inbox. Anything but a request (a flush, an end, an upload),
        or `send_pending`, lets all of it go, in order.
        """
        held = run.held
        if held or new_ops:
            pending = held + new_ops if held else new_ops
            local = run.wake_every == WAKE_AT_LOCAL
            values = sum(op.values for op in pending)
            if (
                local
                and not due
                and not run.release_now
                and values < run.wake_every
                and all(isinstance(op, BatchOp) for op in pending)
            ):
                if not held:
                    run.held_since = started
                run.held = pending
                return []
            run.held = []
            new_ops = pending
        run.release_now = False
        return new_ops

    def _cut(self, run: RunState, new_ops: list[Op]) -> None:
        """Send what the builder holds as one request (every record it came from is done)."""
        chunk = run.builder.take()
        if chunk is not None:
            op = BatchOp(chunk, journaled=run.journal_broken is None)
            op.records, run.chunk_records = run.chunk_records, []
            run.released.extend(op.records)
            new_ops.append(op)

    def _add(self, run: RunState, done: Chunk | None, new_ops: list[Op], seq: int) -> None:
        if done is not None:
            op = BatchOp(done, journaled=run.journal_broken is None)
            # The item that did not fit starts the next request: record ``seq`` goes on.
            op.records = run.chunk_records
            run.chunk_records = [seq] if seq else []
            run.released.extend(s for s in op.records if s != seq)
            new_ops.append(op)
        if done is not None or run.builder.count == 1:
            # The item reached the inbox after the previous pass began: count from then,
            # so a value never waits for the store much longer than flush_interval.
            run.builder_since = run.previous_pass

    # -- the run log: every accepted value is appended here before it is sent --

    def _open_journal(self, run: RunState) -> None:
        """Create the run's log (its spool file), and have the agent watch it."""
        run.journal_opened = True
        with self.lock:
            try:
                spool = self._ensure_spool(run)
            except OSError as exc:
                self._journal_failed(run, exc, [])
                return
        agent.AGENT.watch(spool.path, run.policy)

    def _log_pass(self, run: RunState, new_ops: list[Op]) -> None:
        """Append what this pass accepted to the run log, then hand it to the builder."""
        metrics, params, tags = run.pass_metrics, run.pass_params, run.pass_tags
        if not (metrics or params or tags):
            return
        run.pass_metrics, run.pass_params, run.pass_tags = [], [], []
        seq = self._append_to_log(
            run, {"k": "batch", "m": metrics, "p": params, "t": tags}, new_ops
        )
        if seq:
            run.new_records.append((seq, 1))  # held until its last item leaves the builder
            run.chunk_records.append(seq)
        builder = run.builder
        add = self._add
        for row in metrics:
            done = builder.add_metric(row)
            if done is not None or builder.count == 1:
                add(run, done, new_ops, seq)
        for key, value in params:
            add(run, builder.add_param(key, value), new_ops, seq)
        for key, value in tags:
            add(run, builder.add_tag(key, value), new_ops, seq)

    @staticmethod
    def _control_record(op: Op) -> dict[str, Any] | None:
        if isinstance(op, ArtifactOp):
            return {
                "k": "artifact",
                "path": op.local_path,
                "artifact_path": op.artifact_path,
                "temp": op.temp,
            }
        if isinstance(op, EndOp):
            return {"k": "end", "status": op.status, "end_time": op.end_time}
        return None

    def _log_control(self, run: RunState, op: Op, new_ops: list[Op]) -> None:
        record = self._control_record(op)
        if record is None:
            return
        seq = self._append_to_log(run, record, new_ops)
        op.journaled = bool(seq)
        if seq:
            op.records = [seq]
            run.new_records.append((seq, 0))

    def _append_to_log(
        self, run: RunState, record: dict[str, Any] | None, new_ops: list[Op]
    ) -> int:
        """The record's seq in the run log, or 0 when it could not be written."""
        spool = run.spool
        if record is None or spool is None or run.journal_broken is not None:
            return 0
        try:
            return spool.append([record])
        except OSError as exc:
            self._journal_failed(run, exc, new_ops)
            return 0

    def _journal_failed(self, run: RunState, exc: OSError, new_ops: list[Op]) -> None:
        """The run log cannot be written: values from now on live in memory only."""
        # What the builder holds is in the log: send it apart from what is not.
        self._cut(run, new_ops)
        run.journal_broken = f"{type(exc).__name__}: {exc}"
        where = run.spool_location()
        run.reporter.problem(
            "journal",
            f"could not write the run log in {where} ({run.journal_broken}); values logged "
            "from now on reach the tracking store only while this process lives.",
        )

    def _track(self, run: RunState, new_ops: list[Op]) -> None:
        """Count the new operations against the run-log records they carry (under lock)."""
        pending = run.record_ops
        for seq, holds in run.new_records:
            pending[seq] = pending.get(seq, 0) + holds
        run.new_records.clear()
        for op in new_ops:
            for seq in op.records:
                if seq in pending:
                    pending[seq] += 1
        for seq in run.released:
            if seq in pending:
                pending[seq] -= 1
        run.released.clear()
        self._advance_acks(run)

    def _complete(self, run: RunState, op: Op) -> None:
        """``op`` is delivered (or refused by the store): its records may be acked (under lock)."""
        pending = run.record_ops
        for seq in op.records:
            if seq in pending:
                pending[seq] -= 1
        op.records = []
        self._advance_acks(run)

    def _advance_acks(self, run: RunState) -> None:
        """Ack the records from the last ack on that no operation still carries."""
        spool = run.spool
        if spool is None:
            return
        pending = run.record_ops
        seq = spool.acked
        while pending.get(seq + 1) == 0:
            seq += 1
            del pending[seq]
        if seq > spool.acked:
            # Should the ack not reach the file, the records are delivered again later,
            # which the store absorbs.
            with contextlib.suppress(OSError, ValueError):
                spool.ack(seq)

    def _key(self, run: RunState, kind: str, key: object) -> str | None:
        if type(key) is str:
            checked = run.keys.get(key)
            if checked is None:
                if len(run.keys) > 50_000:
                    run.keys.clear()  # keys made up per step must not grow this forever
                checked = run.keys[key] = validation.check_key(key)
        else:
            checked = validation.check_key(key)
        if isinstance(checked, validation.Invalid):
            run.reporter.invalid(kind, key, checked.reason)
            return None
        return checked

    def _ingest(self, run: RunState, record: tuple[Any, ...], new_ops: list[Op]) -> None:
        kind = record[0]
        if kind == METRIC:
            _, key, value, step, timestamp, auto = record
            # A loop logging one value per step sends thousands of these, checked after its
            # last step while the caller waits: the one-loop checks take half the time.
            if auto and type(value) is float and _checked_step(step):
                self._step_metrics(run, ((key, value),), step, timestamp, new_ops)
            else:
                self._metric(run, key, value, step, timestamp, auto, new_ops)
        elif kind == METRICS:
            _, items, step, timestamp = record
            if _checked_step(step):
                self._step_metrics(run, items, step, timestamp, new_ops)
            else:
                for key, value in items:
                    self._metric(run, key, value, step, timestamp, True, new_ops)
        elif kind == PARAM:
            self._param(run, record[1], record[2], new_ops)
        elif kind == TAG:
            self._tag(run, record[1], record[2], new_ops)
        elif kind == CONTROL:
            op = record[1]
            try:
                self._log_pass(run, new_ops)
                self._cut(run, new_ops)
            finally:
                # Even when that fails (our bug, reported by the caller): a flush or an end
                # that never reached the queue would keep its caller waiting.
                if op is SEND_NOW:
                    run.release_now = True
                else:
                    if isinstance(op, Barrier) and op.final:
                        run.begin_ending(ENDING_RETRY_GRACE)
                    elif isinstance(op, EndOp):
                        run.ended = True
                    new_ops.append(op)
                    self._log_control(run, op, new_ops)
        elif kind == BAD:
            run.reporter.invalid(record[1], record[2], record[3])

    def _metric(
        self,
        run: RunState,
        key: object,
        value: object,
        step: object,
        timestamp: object,
        auto: bool,
        new_ops: list[Op],
    ) -> None:
        name = self._key(run, "metric", key)
        if name is None:
            return
        number = value if type(value) is float else validation.metric_value(value)
        if isinstance(number, validation.Invalid):
            run.reporter.invalid("metric", name, number.reason)
            return
        index = step if _checked_step(step) else validation.metric_step(step)
        if isinstance(index, validation.Invalid):
            run.reporter.invalid("metric", name, index.reason)
            return
        if auto:
            millis = self._untie(run, name, index, cast(int, timestamp))
        else:
            checked = validation.metric_timestamp(timestamp)
            if isinstance(checked, validation.Invalid):
                run.reporter.invalid("metric", name, checked.reason)
                return
            millis = checked
        run.pass_metrics.append((name, number, millis, index))

    def _step_metrics(
        self,
        run: RunState,
        items: Sequence[tuple[Any, Any]],
        step: int,
        timestamp: int,
        new_ops: list[Op],
    ) -> None:
        """`_metric` for each value of one ``log_metrics`` call with an int step (or of
        one ``log_metric`` call with a float value, an int step and no timestamp).

        The same checks in one loop: a per-step training loop sends several thousand of
        these per fit, and each value's method calls cost the training core more than the
        store's own work for that value.
        """
        keys = run.keys
        ties = run.ties
        append = run.pass_metrics.append
        untie = self._untie
        for key, value in items:
            name = keys.get(key) if type(key) is str else None
            if type(name) is not str:
                name = self._key(run, "metric", key)
                if name is None:
                    continue
            if type(value) is not float:
                value = validation.metric_value(value)
                if isinstance(value, validation.Invalid):
                    run.reporter.invalid("metric", name, value.reason)
                    continue
            tie = ties.get(name)
            if tie is not None and timestamp > tie[0]:  # `_untie`'s usual case, inline
                tie[0] = timestamp
                tie[1] = {step: timestamp}
                millis = timestamp
            else:
                millis = untie(run, name, step, timestamp)
            append((name, value, millis, step))

    @staticmethod
    def _untie(run: RunState, key: str, step: int, timestamp: int) -> int:
        # The store orders a key's history by (timestamp, step, value): two values of one
        # key and step logged within the same millisecond would come back sorted by value.
        # Nudge the later one 1 ms forward so the history keeps the logging order.
        state = run.ties.get(key)
        if state is None:
            run.ties[key] = [timestamp, {step: timestamp}]
            return timestamp
        if timestamp > state[0]:
            state[0] = timestamp
            state[1] = {step: timestamp}
            return timestamp
        previous = state[1].get(step)
        if previous is not None and timestamp <= previous:
            timestamp = previous + 1
            state[0] = max(state[0], timestamp)
        state[1][step] = timestamp
        return timestamp

    def _param(self, run: RunState, key: object, value: object, new_ops: list[Op]) -> None:
        checked = self._text_item(run, "param", key, value, validation.MAX_PARAM_VALUE_LENGTH)
        if checked is None:
            return
        name, text = checked
        seen = run.params.get(name)
        if seen is not None:
            if seen != text:
                run.reporter.param_conflict(name, seen, text)
            return
        run.params[name] = text
        run.pass_params.append((name, text))

    def _tag(self, run: RunState, key: object, value: object, new_ops: list[Op]) -> None:
        checked = self._text_item(run, "tag", key, value, validation.MAX_TAG_VALUE_LENGTH)
        if checked is not None:
            run.pass_tags.append(checked)

    def _text_item(
        self, run: RunState, kind: str, key: object, value: object, limit: int
    ) -> tuple[str, str] | None:
        """A param's or tag's checked ``(name, text)``, or ``None`` once reported dropped."""
        name = self._key(run, kind, key)
        if name is None:
            return None
        if isinstance(value, validation.Invalid):
            run.reporter.invalid(kind, name, value.reason)
            return None
        text, problem = validation.text_value(value, limit)
        if problem:
            run.reporter.invalid(kind, name, problem, action="changed")
        return name, text

    # -- dispatching (under self.lock) --

    def _pump(self, run: RunState) -> None:
        while run.ops:
            op = run.ops[0]
            if isinstance(op, Barrier):
                if run.inflight:
                    return
                if op.final and run.spooling and not op.replayed:
                    if run.detached_create is not None:
                        return  # the replay needs to know whether the run exists
                    op.replayed = True
                    run.ops.appendleft(ReplayOp(quick=True))
                    continue
                if run.spool is not None:
                    run.spool.sync()
                run.ops.popleft()
                if op.close:
                    run.closed = True
                    self._close_spool(run)
                op.done.set()
                continue
            serial_busy = op.serial and any(o.serial for o in run.inflight)
            if run.spooling and op.spoolable:
                if run.inflight and (op.ordered or run.replaying or serial_busy):
                    return
                run.ops.popleft()
                self._spool_op(run, op)
                continue
            if op.ordered or run.run_id is None:
                if run.inflight and not self._end_may_overlap(run, op):
                    return
            elif (
                run.ordered_inflight
                or len(run.inflight) >= (1 if run.failing else run.max_in_flight)
                or serial_busy
            ):
                return
            run.ops.popleft()
            if isinstance(op, BatchOp):
                op = self._coalesce(run, op)
            self._dispatch(run, op)

    @staticmethod
    def _end_may_overlap(run: RunState, op: Op) -> bool:
        """Whether the run's end can go out while its last values and uploads are in flight.

        At the end of training the caller waits for the last metric request and the model
        upload; ending the run only after them costs one more round trip, which a server
        that answers slowly makes the biggest part of the wait. The store keeps what a run
        receives after its end, so they may overlap, but only while the store answers
        (not failing, not spooling) and only with requests that carry nothing the end
        could need first (metric-only requests and uploads, not params, tags or submitted
        work). Should one of them fail after all, what it carried is spooled followed by
        the end again (`_spool_op`), so `autolog sync` still ends the run last.
        """
        if not isinstance(op, EndOp) or run.run_id is None or run.failing or run.spooling:
            return False
        if len(run.inflight) >= run.max_in_flight:
            return False
        for other in run.inflight:
            if isinstance(other, ArtifactOp):
                continue
            if not isinstance(other, BatchOp) or other.ordered:
                return False
        return True

    @staticmethod
    def _coalesce(run: RunState, op: BatchOp) -> BatchOp:
        """``op`` merged with the requests queued right behind it, while they fit in one.

        They queue while one is in flight; at a run's end that is typically the last
        values of training, then summaries read after it: one transaction, not two.
        """
        chunk, values, records = op.chunk, op.values, list(op.records)
        journaled = op.journaled
        while run.ops:
            later = run.ops[0]
            # A request of params or tags must not overtake metric requests in flight.
            if not isinstance(later, BatchOp) or (later.ordered and run.inflight):
                break
            merged = chunk.merged(later.chunk)
            if merged is None:
                break
            run.ops.popleft()
            chunk, values = merged, values + later.values
            records += later.records
            journaled = journaled and later.journaled
        if chunk is op.chunk:
            return op
        joined = BatchOp(chunk, journaled=journaled)
        joined.values = values  # what the queue counted (a tag set twice is one item now)
        joined.records = records  # each merged request's count of its records
        return joined

    def _dispatch(self, run: RunState, op: Op) -> None:
        if isinstance(op, EndOp) and run.inflight:
            run.overlapped_end = op
        run.inflight.add(op)
        if op.ordered:
            run.ordered_inflight = True
        if isinstance(op, ReplayOp):
            run.replaying = True
        self.endpoints[run.endpoint_key].tasks.put((run, op))

    def _finish(self, run: RunState, op: Op) -> None:
        run.inflight.discard(op)
        if op.ordered:
            run.ordered_inflight = False
        if isinstance(op, ReplayOp):
            run.replaying = False

    # -- spooling (under self.lock) --

    def _enter_spooling(self, run: RunState, reason: str) -> None:
        if run.spooling:
            return
        run.spooling = True
        if run.spool is None and run.journal_broken is None:
            # The creation record must reach the disk even if nothing else is ever logged.
            try:
                self._ensure_spool(run)
            except OSError as exc:
                run.journal_broken = f"{type(exc).__name__}: {exc}"
        run.next_recovery = time.monotonic() + run.recovery_delay
        where = run.spool_location()
        run.reporter.problem(
            "spooling",
            f"{_sentence(reason)} Its values wait in the run log in {where}, and are sent "
            f"when the store answers again (or by `autolog sync {where}`).",
        )

    def _ensure_spool(self, run: RunState) -> SpoolFile:
        if run.spool is None:
            header = {
                "local_id": run.local_id,
                "tracking_uri": run.tracking_uri,
                "run_id": run.run_id,
                "create": run.create if run.run_id is None else None,
                "owns_run": run.owns,
                "pid": os.getpid(),
                "created": int(time.time() * 1000),
            }
            configured = run.spool_dir()
            fsync = run.policy.fsync
            try:
                try:
                    run.spool = SpoolFile.create(configured, run.local_id, header, fsync=fsync)
                except SpoolBusy:
                    # Another logger (or process) holds a log of that name: one of our own.
                    run.local_id = uuid.uuid4().hex
                    header["local_id"] = run.local_id
                    run.spool = SpoolFile.create(configured, run.local_id, header, fsync=fsync)
            except OSError as exc:
                fallback = _private_temp_spool_dir()
                if fallback is None or fallback == configured:
                    raise
                run.spool = SpoolFile.create(fallback, run.local_id, header, fsync=fsync)
                run.reporter.problem(
                    "spool-fallback",
                    f"could not write the spool in {configured} ({exc}); it goes to "
                    f"{fallback} instead (deliver it with `autolog sync {fallback}`).",
                )
        return run.spool

    def _spool_op(self, run: RunState, op: Op, values: int | None = None) -> None:
        """Leave ``op`` to the run log, which holds it already (under lock).

        Its records are not acked, so a replay of the log (or the agent, or `autolog
        sync`) delivers them. ``values``: how many of its values were not delivered (all,
        unless a part of the request went through). What never reached the log (writing it
        failed) has nowhere to wait: it is counted as lost and reported at exit.
        """
        undelivered = op.values if values is None else values
        run.pending_values -= op.values
        op.records = []  # left to the log: they stay unacked until a replay delivers them
        if op.journaled and run.spool is not None:
            return
        if isinstance(op, ArtifactOp) and op.temp and not op.detached:
            shutil.rmtree(os.path.dirname(op.local_path), ignore_errors=True)
        if not undelivered and not isinstance(op, (ArtifactOp, EndOp)):
            return
        where = run.spool_location()
        why = run.journal_broken or "the run log could not be opened"
        lost_values, lost_artifacts, _ = self.lost.get(where, (0, 0, ""))
        self.lost[where] = (
            lost_values + undelivered,
            lost_artifacts + isinstance(op, ArtifactOp),
            why,
        )
        run.reporter.problem(
            "spool-write",
            f"could not write the spool in {where} ({why}): what the tracking store does "
            "not take is lost; how much is printed when the process exits",
        )

    def _detach_inflight(self, run: RunState) -> None:
        """``flush`` timed out: spool what is still in flight so the caller can go on."""
        self._enter_spooling(run, "the tracking store did not answer in time")
        for op in list(run.inflight):
            if op.spoolable and not op.detached:
                op.detached = True
                self._spool_op(run, op)
                self._finish(run, op)
            elif isinstance(op, CreateOp):
                op.detached = True
                run.detached_create = op
                self._finish(run, op)
                run.ready.set()

    def _close_spool(self, run: RunState) -> None:
        """The run's logger is done: remove its log if all of it is delivered, else keep it.

        A kept log waits for the delivery agent (once this process has exited) or for
        ``autolog sync``.
        """
        if run.spool is None:
            return
        spool, run.spool = run.spool, None
        run.record_ops.clear()
        if spool.caught_up and run.run_id is not None and not run.spooling:
            try:
                spool.close(delete=True)
            except OSError as exc:
                run.reporter.problem(
                    "spool-remove",
                    f"delivered the spool {spool.path}, but could not remove it "
                    f"({exc}); remove it by hand",
                )
            return
        self.left_in_spool[spool.path] = (spool.values, spool.artifacts)
        with contextlib.suppress(OSError):
            spool.close()

    def _retire(self, run: RunState) -> None:
        self._close_spool(run)
        with contextlib.suppress(ValueError):
            self.runs.remove(run)
        key = run.endpoint_key
        if all(other.endpoint_key != key for other in self.runs):
            endpoint = self.endpoints.pop(key, None)
            if endpoint is not None:
                endpoint.stop()

    # -- sender threads --

    def sender_loop(self, endpoint: Endpoint) -> None:
        _worker.active = True
        while True:
            task = endpoint.tasks.get()
            if task is None:
                return
            run, op = task
            try:
                if isinstance(op, SubmitOp):
                    self._submit(run, op)
                else:
                    try:
                        client = endpoint.client()
                    except Exception as exc:
                        self._no_client(run, op, exc)
                    else:
                        self._perform(run, op, client)
            except Exception as exc:
                self._internal_error(run, f"sending {type(op).__name__}", exc)
                with self.lock:
                    self._create_returned(run, op)
                    if op in run.inflight:
                        self._finish(run, op)
                        if op.spoolable:
                            self._enter_spooling(run, "an internal error occurred")
                            self._spool_op(run, op)
                    self._pump(run)
            self.wake.set()

    def _perform(self, run: RunState, op: Op, client: MlflowClient) -> None:
        if isinstance(op, BatchOp):
            self._send_batch(run, op, client)
        elif isinstance(op, CreateOp):
            self._create(run, op, client)
        elif isinstance(op, ArtifactOp):
            self._upload(run, op, client)
        elif isinstance(op, EndOp):
            self._end(run, op, client)
        elif isinstance(op, ReplayOp):
            self._replay(run, op, client)

    def _no_client(self, run: RunState, op: Op, exc: BaseException) -> None:
        """The store could not even be opened: treat it as unreachable."""
        failure = f"cannot open the tracking store {run.tracking_uri} ({type(exc).__name__}: {exc})"
        with self.lock:
            if op.detached:
                self._create_returned(run, op)
                return
            self._finish(run, op)
            run.ready.set()
            self._enter_spooling(run, failure)
            if isinstance(op, ReplayOp):
                run.recovery_delay = min(_RECOVERY_MAX, run.recovery_delay * 2)
                run.next_recovery = time.monotonic() + run.recovery_delay
            elif op.spoolable:
                self._spool_op(run, op)
            self._pump(run)

    def _settle(self, run: RunState, op: Op, failure: str | None, *spooled: Op) -> None:
        """Record ``op`` as done; spool ``spooled`` (what it could not deliver) in its place."""
        with self.lock:
            if op.detached:
                return
            self._finish(run, op)
            if failure is None:
                run.failing = False  # the store answered
            if spooled:
                self._enter_spooling(run, failure or "the tracking store is unreachable")
                self._spool_op(run, op, sum(s.values for s in spooled))
            else:
                run.pending_values -= op.values
                self._complete(run, op)
            self._pump(run)

    def _send_batch(self, run: RunState, op: BatchOp, client: MlflowClient) -> None:
        assert run.run_id is not None
        result = transport.send_chunk(client, run.run_id, op.chunk, run.retry(self.is_exiting))
        for kind, key, reason in result.rejected:
            run.reporter.invalid(kind, key, reason)
        leftovers = [BatchOp(chunk) for chunk in result.undelivered]
        self._settle(run, op, _failure(run, result.failure, result.error), *leftovers)

    def _create(self, run: RunState, op: CreateOp, client: MlflowClient) -> None:
        run_id: str | None = None

        def create() -> None:
            nonlocal run_id
            search = op.attempted
            op.attempted = True
            run_id = runs.ensure_run(client, op.spec, search_first=search)

        outcome, error = transport.call(create, run.retry(self.is_exiting))
        with self.lock:
            if run_id is not None and run.run_id is None:
                run.failing = False
                run.run_id = run_id
                run.reporter.label = f"run {run_id}"
                if run.spool is not None:
                    run.spool.write_run_created(run_id)
            run.ready.set()
            if op.detached:
                self._create_returned(run, op)
                return
            self._finish(run, op)
            if run_id is None:
                self._enter_spooling(
                    run,
                    f"the run could not be created yet: {_failure(run, outcome, error)}",
                )
            self._pump(run)

    def _create_returned(self, run: RunState, op: Op) -> None:
        """A detached creation is over, run made or not: replays may go ahead (under lock)."""
        if run.detached_create is op:
            run.detached_create = None
            self._pump(run)

    def _upload(self, run: RunState, op: ArtifactOp, client: MlflowClient) -> None:
        assert run.run_id is not None
        run_id = run.run_id

        def upload() -> None:
            transport.upload_artifact(
                client, run_id, op.local_path, op.artifact_path, run.policy.request_timeout
            )

        outcome, error = transport.call(upload, run.retry(self.is_exiting))
        if outcome == "item" and not op.detached:
            run.reporter.invalid("artifact", op.local_path, f"upload failed ({error})")
        # A detached upload's file belongs to the replay of the run log now, which
        # uploads it again and removes it then.
        if op.temp and outcome in ("ok", "item") and not op.detached:
            shutil.rmtree(os.path.dirname(op.local_path), ignore_errors=True)
        if outcome in ("ok", "item"):
            self._settle(run, op, None)
        else:
            self._settle(run, op, _failure(run, outcome, error), op)

    def _end(self, run: RunState, op: EndOp, client: MlflowClient) -> None:
        assert run.run_id is not None
        run_id = run.run_id
        outcome, error = transport.call(
            lambda: transport.end_run(client, run_id, op.status, op.end_time),
            run.retry(self.is_exiting),
        )
        if outcome == "item":
            run.reporter.problem("end", f"the store refused to end the run ({error})")
        if outcome in ("ok", "item"):
            self._settle(run, op, None)
        else:
            self._settle(run, op, _failure(run, outcome, error), op)

    def _submit(self, run: RunState, op: SubmitOp) -> None:
        _worker.submit = (run, op)
        try:
            op.fn()
        except Exception as exc:
            run.reporter.problem(
                f"submit:{op.description}",
                f"{op.description} failed ({type(exc).__name__}: {exc}); training carried on.",
            )
        finally:
            _worker.submit = None
        self._settle(run, op, None)

    def follow_up(self, run: RunState, op: Op) -> bool:
        """Queue ``op`` right after the submitted work of ``run`` running on this thread.

        What that work logs (a packaged model) belongs where the work was submitted: before
        the run's end, and also once the logger is closed. Returns ``False`` when this
        thread is not running work of ``run``.
        """
        current = getattr(_worker, "submit", None)
        if current is None or current[0] is not run:
            return False
        submit = current[1]
        with self.lock:
            # In the run log too, after what was logged before the work ran: should this
            # process die, the agent uploads it.
            seq = self._append_to_log(run, self._control_record(op), [])
            op.journaled = bool(seq)
            if seq:
                op.records = [seq]
                run.record_ops[seq] = 1
            run.ops.insert(submit.follow_ups, op)
            submit.follow_ups += 1
            run.pending_values += op.values
        return True

    def _replay(self, run: RunState, op: ReplayOp, client: MlflowClient) -> None:
        from autolog.batching import sync

        with self.lock:
            spool = run.spool
            run.resume_requests()
        run_id = run.run_id
        complete = run_id is not None
        if spool is not None:
            spool.sync()
            retry = run.retry(self.is_exiting)
            if op.quick:
                retry.single_attempt = lambda: True
            outcome = sync.deliver(
                spool,
                client,
                retry,
                run.reporter,
                run_id=run_id,
                request_timeout=run.policy.request_timeout,
            )
            complete, run_id = outcome.complete, outcome.run_id
        with self.lock:
            self._finish(run, op)
            if run_id is not None and run.run_id is None:
                run.run_id = run_id
                run.reporter.label = f"run {run_id}"
            if complete and run.spool is not None and not run.spool.caught_up:
                # Values were appended while it was delivered: replay again at once.
                run.next_recovery = time.monotonic()
            elif complete:
                if run.spool is not None:
                    # Everything the log holds is in the store, what the operations
                    # left to it carried included.
                    run.record_ops = {
                        seq: n for seq, n in run.record_ops.items() if seq > run.spool.acked
                    }
                run.spooling = False
                run.failing = False
                run.recovery_delay = RECOVERY_FIRST
                run.ready.set()
            else:
                run.recovery_delay = min(_RECOVERY_MAX, run.recovery_delay * 2)
                run.next_recovery = time.monotonic() + run.recovery_delay
            self._pump(run)

    # -- errors --

    def _internal_error(self, run: RunState, where: str, exc: BaseException) -> None:
        run.errors.append(exc)
        if not env.testing():
            run.reporter.problem(
                f"internal:{where}",
                f"autolog's batching layer failed while {where} ({type(exc).__name__}: {exc}); "
                "please report this bug.",
            )

    # -- process lifecycle --

    def shutdown(self, timeout: float) -> None:
        """Deliver or spool everything pending, within ``timeout`` seconds (exit path)."""
        self.exiting = True
        deadline = time.monotonic() + timeout
        with self.lock:
            live = [r for r in self.runs if not r.closed]
        barriers: list[tuple[RunState, Barrier]] = []
        # A run we created that nobody ended ends with the process, as MLflow's own runs do.
        status = "FAILED" if getattr(sys, "last_type", None) is not None else "FINISHED"
        for run in live:
            if run.owns and not run.ended:
                run.inbox.append((CONTROL, EndOp(status, int(time.time() * 1000))))
            barrier = Barrier(final=True, close=True)
            run.inbox.append((CONTROL, barrier))
            barriers.append((run, barrier))
        self.wake.set()
        for run, barrier in barriers:
            if not barrier.done.wait(max(0.0, deadline - time.monotonic())):
                run.force_spool = True
                run.abort_requests()
        self.wake.set()
        grace = time.monotonic() + 5.0
        for _, barrier in barriers:
            barrier.done.wait(max(0.0, grace - time.monotonic()))

    def spooled_summary(self) -> tuple[int, int, set[Path]]:
        values = artifacts = 0
        dirs: set[Path] = set()
        with self.lock:
            for path, (v, a) in self.left_in_spool.items():
                if path.exists():
                    values += v
                    artifacts += a
                    dirs.add(path.parent)
            for run in self.runs:
                if run.spool is not None:
                    values += run.spool.values
                    artifacts += run.spool.artifacts
                    dirs.add(run.spool.path.parent)
        return values, artifacts, dirs

    def reset_after_fork(self) -> None:
        """In a forked child: no threads survive; forget the parent's pending work.

        The parent delivers what it had queued. Loggers inherited by the child keep
        working into the same run, with a spool file of their own; the child's threads
        start on its first logging call.
        """
        inherited = self.runs
        self._init()
        agent.AGENT.reset_after_fork()
        for run in inherited:
            run.inbox.clear()
            run.pass_metrics, run.pass_params, run.pass_tags = [], [], []
            run.record_ops.clear()
            run.new_records.clear()
            run.released.clear()
            run.chunk_records.clear()
            run.builder.take()
            # The run is the parent's: the child's log may deliver into it, never end it.
            run.owns = False
            run.journal_opened = False
            run.journal_broken = None
            run.ops.clear()
            run.inflight.clear()
            run.ordered_inflight = False
            run.overlapped_end = None
            run.replaying = False
            run.detached_create = None
            run.pending_values = 0
            if run.spool is not None:
                run.spool.forget()  # the parent still owns the file and its lock
                run.spool = None
            run.local_id = uuid.uuid4().hex
            run.reporter.reset_after_fork()
            run.wake_at = 0  # the next append nudges, which starts the threads
            if run.run_id is None and run.create is not None:
                # Forked while the parent was creating the run: the child finds it by its
                # key once the parent has made it, and never makes a second one.
                run.create = {**run.create, "join": True}
                run.ready.clear()
                run.inbox.append((CONTROL, CreateOp(run.create)))
            self.runs.append(run)

    def ensure_started(self, run: RunState) -> None:
        with self.lock:
            endpoint = self.endpoints.get(run.endpoint_key)
            if endpoint is None:
                endpoint = self.endpoints[run.endpoint_key] = Endpoint(self, run.make_client)
            endpoint.ensure_threads(run.max_in_flight)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._flusher_loop, name="autolog-flusher", daemon=True
                )
                self.thread.start()


def _failure(run: RunState, outcome: str | None, error: BaseException | None) -> str | None:
    if outcome is None:
        return None
    what = {
        "transient": f"the tracking store at {run.tracking_uri} is unreachable",
        "run": "the store refuses data for this run",
        "item": "the store refused the request",
        "server": "the tracking server keeps failing",
    }.get(outcome, outcome)
    return f"{what} ({type(error).__name__}: {str(error)[:200]})" if error else what


ENGINE = Engine()


def _after_fork_in_child() -> None:
    ENGINE.reset_after_fork()
    transport.reset_after_fork()
    sql_bulk.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _private_temp_spool_dir() -> Path | None:
    """Where the spool goes when its own dir cannot be written: this user's temp folder.

    ``None`` where no such folder can be had safely. The temp dir is shared: a folder of
    that name that someone else made, or a link, must not receive our (private) params.
    """
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: no owner check to lean on
        return None
    directory = Path(tempfile.gettempdir()) / f"autolog-spool-{getuid()}"
    try:
        ensure_dir(directory)
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != getuid():
            return None
        os.chmod(directory, 0o700)
    except OSError:
        return None
    return directory


def _sentence(text: str) -> str:
    """``text`` as a sentence: capitalized, with a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _amount(values: int, artifacts: int) -> str:
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
