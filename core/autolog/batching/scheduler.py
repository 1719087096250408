"""Which operation of a run goes out when (under `EngineCore.lock`).

Per run, operations form a FIFO: run creation, requests with params or tags, submitted
work and the run's end go one at a time, in order; requests holding only metrics may
overlap (up to the policy's ``max_in_flight``), as the store orders a metric's history by
timestamp, step and value, not by arrival. After a failed request they too go one at a
time until one succeeds: an outage is probed by one request, not by all. Uploads overlap
with metric requests but not with each other. While the store answers, the run's end
overlaps its last metric requests and uploads. Requests queued behind one in flight leave
as one when they fit in one; full requests to a local store wait for the flush interval.
"""

from __future__ import annotations

import contextlib
import time

from autolog.batching.engine import EngineCore
from autolog.batching.state import (
    WAKE_AT_LOCAL,
    ArtifactOp,
    Barrier,
    BatchOp,
    EndOp,
    Op,
    ReplayOp,
    RunState,
)


class Scheduler(EngineCore):
    """Dispatches each run's queued operations to its store's sender threads."""

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
            merged = chunk.merged(later.chunk, run.metrics_per_write)
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
        run.inflight.add(op)
        if op.ordered:
            run.ordered_inflight = True
        if isinstance(op, ReplayOp):
            run.replaying = True
        self.endpoints[run.endpoint_key].tasks.put((run, op))

    def _finish(self, run: RunState, op: Op) -> None:
        run.inflight.discard(op)
        run.last_progress = time.monotonic()
        if op.ordered:
            run.ordered_inflight = False
        if isinstance(op, ReplayOp):
            run.replaying = False

    def _retire(self, run: RunState) -> None:
        self._close_spool(run)
        with contextlib.suppress(ValueError):
            self.runs.remove(run)
        key = run.endpoint_key
        if all(other.endpoint_key != key for other in self.runs):
            endpoint = self.endpoints.pop(key, None)
            if endpoint is not None:
                endpoint.stop()
