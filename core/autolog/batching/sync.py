"""Delivering spooled data: ``autolog sync [SPOOL]`` and the logger's own replays.

`deliver` sends one spool file's unacknowledged records in order (creating the run
first if it never got created), acknowledging each record in the file as it lands, so a
second sync, or one after a crash, resumes where the last one stopped and every value ends
up in the store exactly once. `sync_spool` does that for a file or a whole spool
directory, with a progress bar, and removes the files it delivered. Two syncs may run at
once (cron and a user): each file is delivered by whichever locks it first, and the other
counts it as delivered when it finds it gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolog import env
from autolog.batching import runs, stores, transport
from autolog.batching.chunks import Chunk, ChunkBuilder
from autolog.batching.errors import Reporter
from autolog.batching.spool import (
    SUFFIX,
    SpoolBusy,
    SpoolContents,
    SpoolFile,
    SpoolGone,
    read_spool,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["Delivery", "PendingFile", "SyncReport", "deliver", "pending_files", "sync_spool"]


@dataclasses.dataclass
class Delivery:
    """What one `deliver` call achieved."""

    complete: bool
    run_id: str | None
    values: int = 0
    artifacts: int = 0
    rejected: int = 0
    created: bool = False
    failure: str | None = None


def _describe(outcome: str, error: BaseException | None) -> str:
    detail = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}" if error else outcome
    if outcome == "transient":
        return f"the tracking store is unreachable ({detail})"
    return f"the store refused it ({detail})"


def deliver(
    spool: SpoolFile,
    client: MlflowClient,
    retry: transport.Retry,
    reporter: Reporter,
    *,
    run_id: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    request_timeout: float = 30.0,
) -> Delivery:
    """Send ``spool``'s pending records in order; stop at the first undeliverable one."""
    contents = read_spool(spool.path)
    for problem in contents.problems:
        reporter.problem(f"spool:{problem}", problem)
    run_id = contents.run_id or run_id
    done = Delivery(complete=False, run_id=run_id)
    writer = stores.writer_for(client)
    if run_id is None:
        spec = contents.header.get("create")
        if not spec:
            done.failure = "the file names no run and no run to create"
            return done
        created: list[str] = []
        outcome, error = transport.call(
            lambda: created.append(runs.ensure_run(writer, spec, search_first=True)), retry
        )
        if not created:
            done.failure = f"could not create the run: {_describe(outcome, error)}"
            return done
        run_id = done.run_id = created[0]
        done.created = True
        spool.write_run_created(run_id)
    target: str = run_id
    requests = _Requests(spool, writer, target, retry, reporter, done, on_progress)
    for record in contents.pending:
        kind = record["k"]
        if kind == "batch":
            if not requests.add(record):
                return done
            continue
        if not requests.send_rest():
            return done
        if kind in ("artifact", "model"):
            # A run log names the file where the training left it; a spool of the first
            # version copied it next to the file.
            local = Path(record["path"]) if "path" in record else spool.path.parent / record["file"]
            if not local.exists():
                reporter.invalid("artifact", str(local), "the file is gone; nothing to upload")
                spool.ack(record["n"])
                continue

            def upload(local: Path = local, record: dict[str, Any] = record) -> None:
                if record["k"] == "model":
                    writer.log_model_dir(
                        target,
                        str(local),
                        record["name"],
                        record.get("artifact_path"),
                        request_timeout,
                    )
                    return
                writer.upload_artifact(
                    target, str(local), record.get("artifact_path"), request_timeout
                )

            outcome, error = transport.call(upload, retry)
            if on_progress is not None and outcome in ("ok", "item"):
                on_progress(1)  # an artifact counts as one item, like one value
            if outcome == "item":
                reporter.invalid("artifact", str(local), _describe(outcome, error))
            elif outcome != "ok":
                done.failure = _describe(outcome, error)
                return done
            else:
                done.artifacts += 1
            spool.ack(record["n"], 0)
            ours = record.get("temp") or record["k"] == "model"
            if ours and local.parent.name.startswith("autolog-"):
                # A folder autolog made for this file alone (a packaged model, log_text).
                shutil.rmtree(local.parent, ignore_errors=True)
        elif kind == "inputs":

            def log_inputs(record: dict[str, Any] = record) -> None:
                writer.log_inputs(target, record["inputs"])

            outcome, error = transport.call(log_inputs, retry)
            if outcome == "item":
                reporter.invalid("dataset", "inputs", _describe(outcome, error))
            elif outcome != "ok":
                done.failure = _describe(outcome, error)
                return done
            spool.ack(record["n"], 0)
        elif kind == "end":

            def terminate(record: dict[str, Any] = record) -> None:
                writer.end_run(target, record["status"], record["end_time"])

            outcome, error = transport.call(terminate, retry)
            if outcome not in ("ok", "item"):
                done.failure = _describe(outcome, error)
                return done
            spool.ack(record["n"], 0)
    if not requests.send_rest():
        return done
    spool.sync()
    done.complete = True
    return done


class _Requests:
    """Consecutive batch records packed into ``log_batch`` requests within MLflow's limits.

    A run log holds one record per pass of the flusher (a few values each, when a loop
    logs every step), or many requests' worth in one: either way the delivery sends full
    requests, and acknowledges a record once all of its values are in the store.
    """

    def __init__(
        self,
        spool: SpoolFile,
        writer: stores.StoreWriter,
        run_id: str,
        retry: transport.Retry,
        reporter: Reporter,
        done: Delivery,
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self._spool = spool
        self._writer = writer
        self._run_id = run_id
        self._retry = retry
        self._reporter = reporter
        self._done = done
        self._on_progress = on_progress
        self._builder = ChunkBuilder()
        self._complete = 0  # the last record all of whose values are in requests

    def add(self, record: dict[str, Any]) -> bool:
        """Queue ``record``'s values, sending each request that fills; ``False`` on failure."""
        builder = self._builder
        for key, value, timestamp, step in record["m"]:
            full = builder.add_metric((key, float(value), timestamp, step))
            if full is not None and not self._send(full):
                return False
        for key, value in record["p"]:
            full = builder.add_param(key, value)
            if full is not None and not self._send(full):
                return False
        for key, value in record["t"]:
            full = builder.add_tag(key, value)
            if full is not None and not self._send(full):
                return False
        self._complete = record["n"]
        return True

    def send_rest(self) -> bool:
        chunk = self._builder.take()
        return chunk is None or self._send(chunk)

    def _send(self, chunk: Chunk) -> bool:
        done = self._done
        result = transport.send_chunk(self._writer, self._run_id, chunk, self._retry)
        for item_kind, key, reason in result.rejected:
            self._reporter.invalid(item_kind, key, reason)
        done.values += result.delivered
        done.rejected += len(result.rejected)
        if self._on_progress is not None:
            self._on_progress(result.delivered + len(result.rejected))
        if result.undelivered:
            # Not acked: the parts that did land are sent again next time, which the
            # store absorbs (metrics are keyed by key/timestamp/step/value).
            done.failure = _describe(result.failure or "transient", result.error)
            return False
        if self._complete > self._spool.acked:
            self._spool.ack(self._complete)
        return True


_IN_USE = "in use by another process (a training still writing it, or another sync)"


@dataclasses.dataclass
class SyncReport:
    """The result of `sync_spool`; ``str()`` gives a one-paragraph summary.

    ``failed`` counts the files a user has to look at, and ``autolog sync`` exits 1 when
    it is not zero: files kept because something in them could not be delivered (a later
    sync resumes them), and delivered files that could not be removed (``not_removed``,
    e.g. a spool dir the user may not write to). The data of the latter is in the store
    and fully acknowledged, so a later sync sends nothing from them again; only the
    user can remove them. Files in use (``skipped``) or delivered by another sync running
    at the same time (``delivered_elsewhere``) need nothing and do not count.
    """

    spool: Path
    files: int = 0
    delivered_files: int = 0  # including `not_removed`
    failed: int = 0  # files that need attention: kept for a later sync, or `not_removed`
    not_removed: int = 0  # delivered, but the file could not be removed
    skipped: int = 0  # files in use by another process: a training, or another sync
    delivered_elsewhere: int = 0  # removed by another sync that delivered them meanwhile
    values: int = 0
    artifacts: int = 0
    rejected: int = 0  # items the store refused (reported, then dropped)
    runs_created: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    stores: list[str] = dataclasses.field(default_factory=list)  # tracking URIs written to

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def __str__(self) -> str:
        if not self.files:
            return f"Nothing to sync in {self.spool}."
        text = (
            f"Delivered {self.values} value(s) and {self.artifacts} artifact(s) from "
            f"{self.delivered_files} of {self.files} spool file(s) in {self.spool}"
        )
        if self.runs_created:
            text += f"; created {len(self.runs_created)} run(s)"
        text += "."
        if self.rejected:
            text += f" {self.rejected} item(s) were refused by the store (see the warnings)."
        if self.delivered_elsewhere:
            text += f" {self.delivered_elsewhere} file(s) were delivered by another sync."
        if self.skipped:
            text += f" {self.skipped} file(s) are {_IN_USE}."
        kept = self.failed - self.not_removed
        if kept:
            text += f" {kept} file(s) were kept for a later sync."
        if self.not_removed:
            text += f" {self.not_removed} delivered file(s) could not be removed."
        for problem in self.problems:
            text += f"\n  {problem}"
        return text


def _spool_files(target: Path) -> list[Path]:
    """The spool files at ``target``, oldest first.

    In the order their runs were logged: a call that joined an earlier call's run (an
    ``evaluate`` after a ``fit``, both while the store was down) finds the run that the
    earlier file creates.
    """
    if target.is_file():
        return [target]
    if target.is_dir():
        return sorted(target.glob(f"*{SUFFIX}"), key=_created)
    return []


def _created(path: Path) -> tuple[bool, int, str]:
    """Sort key: logs that join another's run after the others, then oldest first."""
    try:
        with open(path, "rb") as handle:
            header = json.loads(handle.readline())
    except (OSError, ValueError):
        header = None
    header = header if isinstance(header, dict) else {}
    created = header.get("created")
    create = header.get("create")
    joins = isinstance(create, dict) and bool(create.get("join"))
    return (joins, created if isinstance(created, int) else 0, path.name)


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    if not enabled or total == 0:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]autolog sync"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("values and artifacts"),
        TimeRemainingColumn(),
    ) as bar:
        task = bar.add_task("sync", total=total)
        yield lambda n: bar.advance(task, n)


def sync_spool(
    path: Path | None = None,
    *,
    progress: bool = True,
    tracking_uri: str | None = None,
    retry_timeout: float = 15.0,
    request_timeout: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Deliver every spool file in ``path`` (default: the spool dir), or that one file.

    Args:
        path: A spool directory or one ``.jsonl`` spool file.
        progress: Show a progress bar (rich) while delivering.
        tracking_uri: Send to this store instead of the one each file was written for.
        retry_timeout: How long one request is retried before its file is left for later.
        request_timeout: Timeout of one HTTP request.
        on_progress: Called with the number of values and artifacts delivered as they
            are (a caller's own progress bar; ``progress`` is then ignored).
    """
    target = Path(path).expanduser() if path is not None else env.spool_dir()
    report = SyncReport(spool=target)
    files = _spool_files(target)
    report.files = len(files)
    total = 0
    for file in files:
        with contextlib.suppress(Exception):
            contents = read_spool(file)
            total += contents.pending_values + _pending_artifacts(contents)
    unreachable: set[str] = set()
    with _progress_bar(progress and on_progress is None, total) as bar:
        advance = on_progress or bar
        for file in files:
            try:
                spool = SpoolFile.open(file)
            except SpoolBusy:
                report.skipped += 1
                report.problems.append(f"{file.name}: {_IN_USE}; skipped")
                continue
            except SpoolGone:
                # Listed, then delivered and removed by a sync running at the same time.
                report.delivered_elsewhere += 1
                continue
            except OSError as exc:
                report.failed += 1
                report.problems.append(f"{file.name}: cannot open ({exc})")
                continue
            try:
                delivery, uri = _sync_one(
                    spool, tracking_uri, retry_timeout, request_timeout, unreachable, advance
                )
            except Exception as exc:
                _release(spool)
                report.failed += 1
                report.problems.append(f"{file.name}: {type(exc).__name__}: {exc}")
                continue
            wrote = delivery.values or delivery.artifacts or delivery.created or delivery.complete
            if uri and wrote and uri not in report.stores:
                report.stores.append(uri)
            report.values += delivery.values
            report.artifacts += delivery.artifacts
            report.rejected += delivery.rejected
            if delivery.created and delivery.run_id:
                report.runs_created.append(delivery.run_id)
            if delivery.complete:
                report.delivered_files += 1
                _remove_delivered(spool, report)
            else:
                _release(spool)
                report.failed += 1
                report.problems.append(f"{file.name}: {delivery.failure}")
                if delivery.failure and "unreachable" in delivery.failure:
                    unreachable.add(uri)
    return report


def _remove_delivered(spool: SpoolFile, report: SyncReport) -> None:
    """Remove a delivered file; if that fails, say so and go on with the other files."""
    try:
        spool.close(delete=True)
    except OSError as exc:
        # Every record is acked, so leaving the file costs the user disk space, never a
        # value sent twice; but nobody else will remove it.
        report.failed += 1
        report.not_removed += 1
        report.problems.append(
            f"{spool.path.name}: delivered, but could not remove it "
            f"({exc.strerror or exc}); remove it by hand"
        )


def _release(spool: SpoolFile) -> None:
    """Keep a file for a later sync. Its acks not reaching the disk costs only a resend."""
    with contextlib.suppress(OSError):
        spool.close()


def _sync_one(
    spool: SpoolFile,
    tracking_uri: str | None,
    retry_timeout: float,
    request_timeout: float,
    unreachable: set[str],
    advance: Callable[[int], None],
) -> tuple[Delivery, str]:
    header = read_spool(spool.path).header
    uri = tracking_uri or header.get("tracking_uri")
    if not uri:
        return Delivery(False, None, failure="the file names no tracking store"), ""
    client = stores.client_for(uri, request_timeout)
    retry = transport.Retry(
        timeout=retry_timeout,
        initial_delay=0.25,
        max_delay=4.0,
        abort=threading.Event(),
        # One store found down: try each further file once instead of waiting again.
        single_attempt=lambda: uri in unreachable,
    )
    reporter = Reporter(f"spool file {spool.path.name}")
    return (
        deliver(
            spool, client, retry, reporter, on_progress=advance, request_timeout=request_timeout
        ),
        uri,
    )


def _pending_artifacts(contents: SpoolContents) -> int:
    return sum(1 for record in contents.pending if record["k"] == "artifact")


@dataclasses.dataclass
class PendingFile:
    """What one spool file would deliver (`pending_files`, for ``autolog sync --dry-run``)."""

    path: Path
    tracking_uri: str | None  # where it would go (``tracking_uri=`` given, or the file's)
    run_id: str | None  # None: the run does not exist yet and would be created
    run_name: str | None
    experiment: str | None  # the experiment id or name a run to create goes to
    values: int
    artifacts: int
    end_status: str | None  # the status the run would be ended with, if the file ends it
    problems: list[str]


def pending_files(
    path: Path | None = None, *, tracking_uri: str | None = None
) -> list[PendingFile]:
    """What `sync_spool` would deliver from ``path``, read from the files; nothing is sent."""
    target = Path(path).expanduser() if path is not None else env.spool_dir()
    found: list[PendingFile] = []
    for file in _spool_files(target):
        try:
            contents = read_spool(file)
        except OSError as exc:
            found.append(
                PendingFile(file, None, None, None, None, 0, 0, None, [f"cannot read ({exc})"])
            )
            continue
        create = contents.header.get("create") or {}
        ends = [r["status"] for r in contents.pending if r["k"] == "end"]
        found.append(
            PendingFile(
                path=file,
                tracking_uri=tracking_uri or contents.header.get("tracking_uri"),
                run_id=contents.run_id,
                run_name=create.get("run_name"),
                experiment=create.get("experiment_id") or create.get("experiment_name"),
                values=contents.pending_values,
                artifacts=_pending_artifacts(contents),
                end_status=ends[-1] if ends else None,
                problems=list(contents.problems),
            )
        )
    return found
