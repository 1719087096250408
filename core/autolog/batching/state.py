"""What the machinery knows: queued records, per-run operations, and each run's state.

A logger's inbox holds small tuples (kinds below) built on the caller's thread. The flusher
turns them into `Op` objects, queued per run in `RunState.ops` and performed
in order by the sender threads (see `autolog.batching.flusher`).
"""

from __future__ import annotations

import enum
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

from autolog import env
from autolog.batching import transport, validation
from autolog.batching.chunks import MAX_METRICS, Chunk, ChunkBuilder
from autolog.batching.errors import Reporter
from autolog.batching.policy import BatchPolicy
from autolog.batching.spool import SpoolFile

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "BAD",
    "CONTROL",
    "FLUSH_INTERVAL_LOCAL",
    "FLUSH_INTERVAL_SERVER",
    "METRIC",
    "METRICS",
    "PARAM",
    "RECOVERY_FIRST",
    "SEND_NOW",
    "TAG",
    "WAKE_AT_LOCAL",
    "WAKE_AT_SERVER",
    "ArtifactOp",
    "Barrier",
    "BatchOp",
    "CreateOp",
    "EndOp",
    "InputsOp",
    "ModelOp",
    "Op",
    "Owner",
    "ReplayOp",
    "RunState",
    "SubmitOp",
]

# Inbox record kinds (small ints: the caller's thread builds these tuples per value).
METRIC: Final = 0  # (METRIC, key, value, step, timestamp, auto_timestamp)
METRICS: Final = 1  # (METRICS, [(key, value), ...], step, timestamp)
PARAM: Final = 2  # (PARAM, key, text_or_Invalid)
TAG: Final = 3  # (TAG, key, text_or_Invalid)
CONTROL: Final = 4  # (CONTROL, op) or (CONTROL, SEND_NOW)
BAD: Final = 5  # (BAD, kind, key, reason): the caller passed something unusable
# A CONTROL payload that is no operation: send what is buffered now, order nothing.
SEND_NOW: Final = "send-now"

# Inbox records at which a logging call wakes the flusher before the interval is up. A
# tracking server does a request's work in its own process: a full request's worth goes at
# once, overlapping that work with the caller's. A local store does it in this process,
# beside the caller, so it waits for the interval; the bound only caps memory.
WAKE_AT_SERVER: Final = 1000
WAKE_AT_LOCAL: Final = 50_000
# flush_interval when the policy leaves it to the store (seconds).
FLUSH_INTERVAL_SERVER: Final = 1.0
FLUSH_INTERVAL_LOCAL: Final = 5.0
RECOVERY_FIRST: Final = 5.0  # seconds before a spooling run first tries its spool again
# Once a run is ending (end_run, close, exit), a request that fails is not retried
# for longer than this: the caller is waiting, the data goes to the spool, and the final
# barrier replays the spool once more before the end anyway. Without an outage nothing
# waits for it.
ENDING_RETRY_GRACE: Final = 0.0
# -- operations -----------------------------------------------------------------------


class Op:
    ordered = True  # waits until nothing else of the run is in flight
    serial = False  # unordered, but one at a time among serial ops (artifacts)
    spoolable = True  # in the run log: left to a replay of it when the run is spooling
    detached = False  # left to the run log while still in flight (flush timed out)
    values = 0  # metric/param/tag values it carries
    journaled = True  # what it carries is in the run log (False once writing it failed)
    records: Sequence[int] = ()  # the run-log records it carries values of


class CreateOp(Op):
    spoolable = False  # the spool header records the creation instead

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.attempted = False


class BatchOp(Op):
    def __init__(self, chunk: Chunk, *, journaled: bool = True) -> None:
        self.chunk = chunk
        self.values = len(chunk)
        self.ordered = not chunk.metric_only
        self.journaled = journaled


class ArtifactOp(Op):
    # An upload need not wait for metric requests in flight (nor hold them up), but two
    # uploads keep their order: the later one may overwrite the same path.
    ordered = False
    serial = True

    def __init__(self, local_path: str, artifact_path: str | None, *, temp: bool) -> None:
        self.local_path = local_path
        self.artifact_path = artifact_path
        # We made the file in a temp folder of its own (log_text, packaged models): the
        # folder is deleted once the file is uploaded, or moved into the spool.
        self.temp = temp


class InputsOp(Op):
    """Dataset inputs of the run: ``[{"dataset": {name, digest, source_type, source,
    schema, profile}, "context": "train"}]``, plain data (the run log holds them too)."""

    def __init__(self, inputs: list[dict[str, Any]]) -> None:
        self.inputs = inputs


class ModelOp(ArtifactOp):
    """A saved MLflow model directory (ours, in a temp folder of its own) to register as
    an MLflow 3 LoggedModel of the run when it is delivered (the run's artifacts, where
    the store has no LoggedModels)."""

    def __init__(self, local_path: str, artifact_path: str | None, *, name: str) -> None:
        super().__init__(local_path, artifact_path, temp=True)
        self.name = name


class EndOp(Op):
    def __init__(self, status: str, end_time: int) -> None:
        self.status = status
        self.end_time = end_time


class SubmitOp(Op):
    spoolable = False  # code cannot be spooled (no pickle); it runs when its turn comes

    def __init__(self, fn: Callable[[], None], description: str) -> None:
        self.fn = fn
        self.description = description
        self.follow_ups = 0  # ops the work queued to run right after it (its artifacts)


class ReplayOp(Op):
    spoolable = False

    def __init__(self, *, quick: bool = False) -> None:
        self.quick = quick  # one attempt per request: just checking whether the store is back


class Barrier(Op):
    spoolable = False

    def __init__(self, *, final: bool = False, close: bool = False) -> None:
        self.done = threading.Event()
        self.final = final  # close/end_run/exit: try delivering the spool first
        self.close = close
        self.replayed = False


# -- per-run state ----------------------------------------------------------------------


class Owner(enum.Enum):
    """Which thread may touch a field of `RunState` (its annotation's metadata)."""

    FIXED = "set when the logger is made, never changed"
    SHARED = "a thread-safe object, or a flag any thread sets and its reader tolerates"
    FLUSHER = "the flusher thread's alone"
    LOCKED = "read and written under Engine.lock"


FIXED: Final = Owner.FIXED
SHARED: Final = Owner.SHARED
FLUSHER: Final = Owner.FLUSHER
LOCKED: Final = Owner.LOCKED


class RunState:
    """Everything the machinery knows about one logger's run.

    Each field says, in its annotation, which thread may touch it (`Owner`): a test holds
    every field to one.
    """

    inbox: Annotated[deque[tuple[Any, ...]], SHARED]
    wake_every: Annotated[int, FIXED]
    wake_at: Annotated[int, SHARED]
    run_id: Annotated[str | None, LOCKED]
    create: Annotated[dict[str, Any] | None, LOCKED]
    local_id: Annotated[str, LOCKED]
    owns: Annotated[bool, LOCKED]
    ready: Annotated[threading.Event, SHARED]
    endpoint_key: Annotated[tuple[Any, ...], FIXED]
    make_client: Annotated[Callable[[], MlflowClient], FIXED]
    tracking_uri: Annotated[str, FIXED]
    policy: Annotated[BatchPolicy, FIXED]
    max_in_flight: Annotated[int, FIXED]
    flush_interval: Annotated[float, FIXED]
    reporter: Annotated[Reporter, SHARED]
    pass_metrics: Annotated[list[tuple[str, float, int, int]], FLUSHER]
    pass_params: Annotated[list[tuple[str, str]], FLUSHER]
    pass_tags: Annotated[list[tuple[str, str]], FLUSHER]
    journal_broken: Annotated[str | None, LOCKED]
    journal_opened: Annotated[bool, FLUSHER]
    ended: Annotated[bool, FLUSHER]
    held: Annotated[list[Op], FLUSHER]
    held_since: Annotated[float, FLUSHER]
    release_now: Annotated[bool, FLUSHER]
    new_records: Annotated[list[tuple[int, int]], FLUSHER]
    released: Annotated[list[int], FLUSHER]
    chunk_records: Annotated[list[int], FLUSHER]
    builder: Annotated[ChunkBuilder, FLUSHER]
    builder_since: Annotated[float, FLUSHER]
    previous_pass: Annotated[float, FLUSHER]
    this_pass: Annotated[float, FLUSHER]
    keys: Annotated[dict[str, str | validation.Invalid], FLUSHER]
    params: Annotated[dict[str, str], FLUSHER]
    ties: Annotated[dict[str, list[Any]], FLUSHER]
    record_ops: Annotated[dict[int, int], LOCKED]
    ops: Annotated[deque[Op], LOCKED]
    inflight: Annotated[set[Op], LOCKED]
    ordered_inflight: Annotated[bool, LOCKED]
    pending_values: Annotated[int, LOCKED]
    spooling: Annotated[bool, LOCKED]
    spool: Annotated[SpoolFile | None, LOCKED]
    replaying: Annotated[bool, LOCKED]
    detached_create: Annotated[Op | None, LOCKED]
    next_recovery: Annotated[float, LOCKED]
    recovery_delay: Annotated[float, LOCKED]
    force_spool: Annotated[bool, SHARED]
    abort: Annotated[threading.Event, SHARED]
    retry_wake: Annotated[threading.Event, SHARED]
    ending_at: Annotated[float, SHARED]
    last_failure: Annotated[float, SHARED]
    last_progress: Annotated[float, SHARED]
    metrics_per_write: Annotated[int, SHARED]
    failing: Annotated[bool, SHARED]
    closed: Annotated[bool, LOCKED]
    errors: Annotated[list[BaseException], SHARED]

    def __init__(
        self,
        *,
        run_id: str | None,
        create: dict[str, Any] | None,
        endpoint_key: tuple[Any, ...],
        make_client: Callable[[], MlflowClient],
        tracking_uri: str,
        policy: BatchPolicy,
    ) -> None:
        server = transport.is_http(tracking_uri)
        self.inbox = deque()
        self.wake_every = WAKE_AT_SERVER if server else WAKE_AT_LOCAL
        self.wake_at = self.wake_every  # inbox length at which the caller wakes the flusher
        self.run_id = run_id
        self.create = create
        # The run log's name: the run's key for a run this logger creates; a logger that
        # joins a run (by id, or by the key of a run being created) has a log of its own.
        self.local_id = create["run_key"] if create and not create.get("join") else uuid.uuid4().hex
        self.owns = create is not None  # we create the run, so we end it (with the process)
        self.ready = threading.Event()
        if run_id is not None:
            self.ready.set()
        self.endpoint_key = endpoint_key
        self.make_client = make_client  # called on a sender thread: creating a store is I/O
        self.tracking_uri = tracking_uri
        self.policy = policy
        self.max_in_flight = policy.max_in_flight or (4 if server else 1)
        self.flush_interval = policy.flush_interval or (
            FLUSH_INTERVAL_SERVER if server else FLUSH_INTERVAL_LOCAL
        )
        self.reporter = Reporter(f"run {run_id}" if run_id else f"run {self.local_id[:8]}…")
        # flusher-only state
        # The values checked in the current pass over the inbox, not yet in the run log.
        self.pass_metrics = []
        self.pass_params = []
        self.pass_tags = []
        # Why the run log cannot be written (None while it can, or before it is opened).
        self.journal_broken = None
        self.journal_opened = False
        self.ended = False  # an end of the run was logged
        # Full requests to a local store waiting for the interval, since when, and
        # whether `send_pending` asked for everything to go now.
        self.held = []
        self.held_since = 0.0
        self.release_now = False
        # flusher-only: records this pass wrote (seq, holds), records whose last values left
        # the builder, and the records the request being filled holds values of.
        self.new_records = []
        self.released = []
        self.chunk_records = []
        self.builder = ChunkBuilder()
        self.builder_since = 0.0
        # When the flusher's previous and current passes over the inbox began.
        self.previous_pass = self.this_pass = time.monotonic()
        self.keys = {}
        self.params = {}
        self.ties = {}
        # guarded by Engine.lock
        # Run-log records not yet acked, by seq: how many operations still carry values of
        # each, plus one while the builder holds some of them. A record reaches 0 once all
        # of it is delivered; the log is acked up to the first record above 0. Operations
        # left to the log (the run spools) never count down: a replay of the log acks them.
        self.record_ops = {}
        self.ops = deque()
        self.inflight = set()
        self.ordered_inflight = False
        self.pending_values = 0
        self.spooling = False
        self.spool = None
        self.replaying = False
        # The run's creation that a timed-out flush stopped waiting for: until it returns, a
        # replay cannot tell whether the run exists, and would create a second one.
        self.detached_create = None
        self.next_recovery = 0.0
        self.recovery_delay = RECOVERY_FIRST
        self.force_spool = False
        self.abort = threading.Event()
        self.retry_wake = threading.Event()  # ends retry backoff sleeps (see `Retry.wake`)
        self.ending_at = math.inf  # set by the flusher when the final barrier arrives
        self.last_failure = -math.inf  # when a request to the store last failed
        self.last_progress = time.monotonic()  # when an operation of the run last finished
        # What the store's writer takes in one request of metrics (set by the senders once
        # they know the writer; `StoreWriter.metrics_per_write`).
        self.metrics_per_write = MAX_METRICS
        # A request failed and none has succeeded since: one request at a time until one
        # does, so an outage is probed by one retrying request, not by max_in_flight.
        self.failing = False
        self.closed = False
        self.errors = []

    @property
    def label(self) -> str:
        return f"run {self.run_id}" if self.run_id else f"pending run {self.local_id}"

    def spool_dir(self) -> Path:
        return self.policy.spool_dir or env.spool_dir()

    def spool_location(self) -> Path:
        """Where this run's spool is: its open file's folder (a fallback, maybe), else its dir."""
        return self.spool.path.parent if self.spool is not None else self.spool_dir()

    def retry(self, exiting: Callable[[], bool]) -> transport.Retry:
        return transport.Retry(
            timeout=self.policy.retry_timeout,
            initial_delay=self.policy.retry_initial_delay,
            max_delay=self.policy.retry_max_delay,
            abort=self.abort,
            single_attempt=exiting,
            cutoff=lambda: self.ending_at,
            failed=self._failed,
            wake=self.retry_wake,
        )

    def abort_requests(self) -> None:
        """Stop retrying every request of this run now; what they carry is spooled."""
        self.abort.set()
        self.retry_wake.set()

    def resume_requests(self) -> None:
        """Retry normally again (a replay of the spool begins)."""
        self.abort.clear()
        if self.ending_at == math.inf:
            self.retry_wake.clear()

    def begin_ending(self, grace: float) -> None:
        """The run is ending: requests stop retrying ``grace`` seconds from now."""
        self.ending_at = min(self.ending_at, time.monotonic() + grace)
        self.retry_wake.set()

    def _failed(self) -> None:
        self.last_failure = time.monotonic()
        self.failing = True
