"""The run log: every accepted value is appended here before it is sent.

Each pass of the flusher appends what it accepted to the run's log (its spool file, see
`autolog.batching.spool`) and only then hands it to the request builder; each request
carries the log records it holds values of, and a record is acknowledged in the log once
every request that carried it is delivered. While the store is down, requests are left to
the log (the run *spools*), which is replayed from its last acknowledgement when the
store answers. What could not be written to the log is counted as lost, and said so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from autolog.batching import agent
from autolog.batching.chunks import Chunk
from autolog.batching.engine import EngineCore
from autolog.batching.spool import SpoolBusy, SpoolFile, ensure_dir
from autolog.batching.state import (
    ArtifactOp,
    BatchOp,
    CreateOp,
    EndOp,
    InputsOp,
    ModelOp,
    Op,
    RunState,
)


class RunLogWriter(EngineCore):
    """Writes and acknowledges run logs; leaves undeliverable operations to them."""

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

    @staticmethod
    def _control_record(op: Op) -> dict[str, Any] | None:
        if isinstance(op, ModelOp):
            return {
                "k": "model",
                "path": op.local_path,
                "artifact_path": op.artifact_path,
                "name": op.name,
            }
        if isinstance(op, ArtifactOp):
            return {
                "k": "artifact",
                "path": op.local_path,
                "artifact_path": op.artifact_path,
                "temp": op.temp,
            }
        if isinstance(op, EndOp):
            return {"k": "end", "status": op.status, "end_time": op.end_time}
        if isinstance(op, InputsOp):
            return {"k": "inputs", "inputs": op.inputs}
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
        self, run: RunState, record: dict[str, Any] | None, new_ops: list[Op] | None
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

    def _journal_failed(self, run: RunState, exc: OSError, new_ops: list[Op] | None) -> None:
        """The run log cannot be written: values from now on live in memory only.

        ``new_ops`` is the flusher's pass (``None`` on another thread, which must not touch
        the builder): what the builder holds is in the log, and is sent apart from what
        is not, so that what is lost can be counted exactly.
        """
        if new_ops is not None:
            self._cut(run, new_ops)
        with self.lock:
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
        records, op.records = op.records, []  # unacked until a replay delivers them
        if op.journaled and run.spool is not None:
            if isinstance(op, ArtifactOp) and records and not op.detached:
                self._keep_in_spool(run, op, records[0])
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

    def _keep_in_spool(self, run: RunState, op: ArtifactOp, seq: int) -> None:
        """Put a file the store could not take beside the run log: moved if it is ours
        (a packaged model, log_text), copied if it is the user's, who may delete it.

        The spool folder then holds everything to deliver, private (0700/0600), whatever
        becomes of the temp folder, and can be synced from another machine. If that
        fails, the log still names the file where it was logged.
        """
        assert run.spool is not None
        try:
            run.spool.keep_artifact(seq, op.local_path, move=op.temp)
        except OSError as exc:
            run.reporter.problem(
                "spool-copy",
                f"could not put {op.local_path} beside the run log ({exc}); it is uploaded "
                "from where it was logged",
            )
            return
        if op.temp:
            shutil.rmtree(os.path.dirname(op.local_path), ignore_errors=True)

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
