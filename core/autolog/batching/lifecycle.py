"""The engine's process lifecycle: a bounded flush at exit, the run-log summary, forks."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from autolog.batching import agent
from autolog.batching.engine import EngineCore
from autolog.batching.state import (
    CONTROL,
    Barrier,
    CreateOp,
    EndOp,
    RunState,
)


class Lifecycle(EngineCore):
    """Exit and fork handling (the exit hook itself is `autolog.batching.shutdown`)."""

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
        """What waits in run logs not yet delivered: values, artifacts, their folders."""
        values = artifacts = 0
        dirs: set[Path] = set()
        with self.lock:
            for path, (v, a) in self.left_in_spool.items():
                if path.exists():
                    values += v
                    artifacts += a
                    dirs.add(path.parent)
            for run in self.runs:
                spool = run.spool
                if spool is not None and not (spool.caught_up and run.run_id is not None):
                    values += spool.values
                    artifacts += spool.artifacts
                    dirs.add(spool.path.parent)
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
