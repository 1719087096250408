"""The sender threads: each performs one operation of a run against its tracking store.

A request delivered (or refused item by item) completes its run-log records; one that
fails leaves its operation to the run log and the run spools. Submitted work (model
packaging) runs here too, and what it logs is queued right after it.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING, Final

from autolog.batching import runs, stores, transport
from autolog.batching.engine import Endpoint, EngineCore, _worker
from autolog.batching.state import (
    RECOVERY_FIRST,
    ArtifactOp,
    BatchOp,
    CreateOp,
    EndOp,
    InputsOp,
    ModelOp,
    Op,
    ReplayOp,
    RunState,
    SubmitOp,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

_RECOVERY_MAX: Final = 60.0


class Senders(EngineCore):
    """What a sender thread does with an operation, and what follows from its outcome."""

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
        elif isinstance(op, InputsOp):
            self._inputs(run, op, client)
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
        writer = stores.writer_for(client)
        run.metrics_per_write = writer.metrics_per_write
        result = transport.send_chunk(writer, run.run_id, op.chunk, run.retry(self.is_exiting))
        for kind, key, reason in result.rejected:
            run.reporter.invalid(kind, key, reason)
        leftovers = [BatchOp(chunk) for chunk in result.undelivered]
        self._settle(run, op, _failure(run, result.failure, result.error), *leftovers)

    def _create(self, run: RunState, op: CreateOp, client: MlflowClient) -> None:
        run_id: str | None = None
        writer = stores.writer_for(client)
        run.metrics_per_write = writer.metrics_per_write

        def create() -> None:
            nonlocal run_id
            search = op.attempted
            op.attempted = True
            run_id = runs.ensure_run(writer, op.spec, search_first=search)

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
        writer = stores.writer_for(client)

        def upload() -> None:
            if isinstance(op, ModelOp):
                writer.log_model_dir(
                    run_id,
                    op.local_path,
                    op.name,
                    op.artifact_path,
                    run.policy.request_timeout,
                )
            else:
                writer.upload_artifact(
                    run_id, op.local_path, op.artifact_path, run.policy.request_timeout
                )

        outcome, error = transport.call(upload, run.retry(self.is_exiting))
        if outcome == "item" and not op.detached:
            run.reporter.invalid("artifact", op.local_path, f"upload failed ({error})")
        # A detached upload's file belongs to the replay of the run log now, which
        # uploads it again and removes it then.
        if op.temp and outcome in ("ok", "item") and not op.detached:
            shutil.rmtree(os.path.dirname(op.local_path), ignore_errors=True)
        self._settle_outcome(run, op, outcome, error)

    def _settle_outcome(
        self, run: RunState, op: Op, outcome: str, error: BaseException | None
    ) -> None:
        """Done when the store took it or refused it (reported); else left to the run log."""
        if outcome in ("ok", "item"):
            self._settle(run, op, None)
        else:
            self._settle(run, op, _failure(run, outcome, error), op)

    def _end(self, run: RunState, op: EndOp, client: MlflowClient) -> None:
        assert run.run_id is not None
        run_id = run.run_id
        writer = stores.writer_for(client)
        outcome, error = transport.call(
            lambda: writer.end_run(run_id, op.status, op.end_time), run.retry(self.is_exiting)
        )
        if outcome == "item":
            run.reporter.problem("end", f"the store refused to end the run ({error})")
        self._settle_outcome(run, op, outcome, error)

    def _inputs(self, run: RunState, op: InputsOp, client: MlflowClient) -> None:
        assert run.run_id is not None
        run_id = run.run_id
        writer = stores.writer_for(client)
        outcome, error = transport.call(
            lambda: writer.log_inputs(run_id, op.inputs), run.retry(self.is_exiting)
        )
        if outcome == "item":
            run.reporter.invalid("dataset", "inputs", f"the store refused them ({error})")
        self._settle_outcome(run, op, outcome, error)

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
            seq = self._append_to_log(run, self._control_record(op), None)
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
