"""Talking to the tracking store: one client per URI, retries, and isolating bad items.

Every write goes through `mlflow.MlflowClient`. Over HTTP, MLflow's client retries
on its own for minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``), which would hide an outage
from us; the clients made here send each request once, with a bounded timeout, and this
module owns the retry policy instead: exponential backoff with jitter on connection
errors, timeouts, HTTP 429 and 5xx, until the policy's deadline.

When the store refuses a request (HTTP 400: some item it does not accept), the request is
halved until the offending items stand alone; the rest is delivered and the offenders are
reported. Errors that concern the whole run (deleted, missing, forbidden) are not split:
the data goes to the spool instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import posixpath
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal

from autolog.batching import fast_path, sql_bulk
from autolog.batching.chunks import Chunk
from autolog.batching.rest import (
    TransientHTTPError,
    active_model_id_reader,
    send_once,
    single_attempt_store,
)
from autolog.batching.sql_bulk import bulk_metric_writer

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "Outcome",
    "Retry",
    "SendResult",
    "TransientHTTPError",
    "classify",
    "client_for",
    "end_run",
    "is_http",
    "log_inputs",
    "log_model_dir",
    "send_chunk",
    "upload_artifact",
]

Outcome = Literal["ok", "transient", "server", "item", "run"]

_TRANSIENT_CODES: Final = frozenset(
    {
        "TEMPORARILY_UNAVAILABLE",
        "REQUEST_LIMIT_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "DEADLINE_EXCEEDED",
        "ABORTED",
        "CANCELLED",
    }
)
_RUN_CODES: Final = frozenset(
    {
        "RESOURCE_DOES_NOT_EXIST",
        "NOT_FOUND",
        "ENDPOINT_NOT_FOUND",
        "INVALID_STATE",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "CUSTOMER_UNAUTHORIZED",
        "FEATURE_DISABLED",
    }
)
# A server that answers 500 may be hitting a transient database lock, or choking on one
# item: retry a few times, then split the request to find out.
SERVER_ERROR_ATTEMPTS: Final = 3
_SLEEP_SLICE: Final = 0.1


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


# Transient failures raised by libraries the store may use, looked up by module name.
_TRANSIENT_ELSEWHERE: Final = (
    ("requests.exceptions", ("ConnectionError", "Timeout", "RetryError", "ChunkedEncodingError")),
    ("sqlalchemy.exc", ("OperationalError",)),  # "database is locked" and the like
    ("sqlite3", ("OperationalError",)),
)


def _transient_exception_types() -> tuple[type[BaseException], ...]:
    """The exception types that mean "try again later", from modules already imported.

    An exception of a module nobody imported cannot have been raised, so nothing is
    imported here. This runs on a sender thread at the first failed request, typically
    mid-training: importing SQLAlchemy there (an HTTP store never loads it) took about
    0.13 s of the core that trains, and two threads importing the same package can
    deadlock (see `autolog.warmup`).
    """
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError, TransientHTTPError]
    for module_name, names in _TRANSIENT_ELSEWHERE:
        module = sys.modules.get(module_name)
        for name in names if module is not None else ():
            kind = getattr(module, name, None)
            if isinstance(kind, type) and issubclass(kind, BaseException):
                kinds.append(kind)
    return tuple(kinds)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(exc: BaseException) -> Outcome:
    """What a failed store call means for the data it carried."""
    transient = _transient_exception_types()  # a few dict lookups: failures are rare
    chain = _chain(exc)
    if any(isinstance(e, transient) for e in chain):
        return "transient"
    code = getattr(exc, "error_code", None)
    if code in _TRANSIENT_CODES:
        return "transient"
    if code in _RUN_CODES:
        return "run"
    message = str(exc)
    if "must be in the 'active' state" in message:
        return "run"  # the run was deleted; every item would be refused
    if code == "INTERNAL_ERROR" or code is None:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException):
            return "server"
        return "item"  # e.g. a value the client cannot encode
    return "item"


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


def send_chunk(client: MlflowClient, run_id: str, chunk: Chunk, retry: Retry) -> SendResult:
    """Deliver ``chunk``, isolating items the store refuses; see `SendResult`."""
    from mlflow.entities import Metric, Param, RunTag

    result = SendResult()
    todo = [chunk]
    while todo:
        part = todo.pop(0)

        def log(part: Chunk = part) -> None:
            # MLflow's log_batch links each metric to the active logged model; the bulk
            # writer's rows cannot, so with one set the store's own log_batch writes them.
            linked = bool(part.metrics) and bool(active_model_id_reader()())
            bulk = (
                bulk_metric_writer(client) if (part.metrics or part.params) and not linked else None
            )
            if bulk is None:
                rows_writer = _rest_rows_writer(client)
                if rows_writer is not None:
                    rows_writer(run_id, part.metrics, part.params, part.tags)
                    return
                client.log_batch(
                    run_id,
                    metrics=[Metric(k, v, ts, s) for k, v, ts, s in part.metrics],
                    params=[Param(k, v) for k, v in part.params],
                    tags=[RunTag(k, v) for k, v in part.tags],
                )
                return
            # Tags go in a second transaction (MLflow gives some of them meaning): if it
            # fails, the retry writes the metrics and params again, and the bulk writer
            # skips what is already there.
            bulk(run_id, part.metrics, part.params)
            if part.tags:
                client.log_batch(run_id, tags=[RunTag(k, v) for k, v in part.tags])

        outcome, error = call(log, retry)
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


def _rest_rows_writer(client: MlflowClient) -> Callable[..., None] | None:
    """The lean ``log_batch`` of a client made by `client_for` for a server, if it is one."""
    if not fast_path.enabled():
        return None
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    writer: Callable[..., None] | None = getattr(store, "log_batch_rows", None)
    return writer


def upload_artifact(
    client: MlflowClient,
    run_id: str,
    local_path: str,
    artifact_path: str | None,
    request_timeout: float,
) -> None:
    """Upload a file, or a directory's contents, to the run's artifacts; one attempt.

    Through a tracking server's artifact proxy (``mlflow-artifacts:``, what ``mlflow
    server`` uses by default) each file is sent once with ``request_timeout``: MLflow's
    artifact client retries on its own for minutes, which would hold up the end of a run
    while the server is down, out of reach of our retry policy and its cutoff. Other
    artifact stores (local folders, S3, ...) go through MLflow's client.
    """
    repo = _proxied_artifact_repo(client, run_id)
    if repo is None:
        if os.path.isdir(local_path):
            client.log_artifacts(run_id, local_path, artifact_path)
        else:
            client.log_artifact(run_id, local_path, artifact_path)
        return
    if not os.path.isdir(local_path):
        _put(repo, local_path, artifact_path, request_timeout)
        return
    for root, _dirs, files in os.walk(local_path):
        relative = os.path.relpath(root, local_path)
        parts = [p for p in (artifact_path, relative.replace(os.sep, "/")) if p and p != "."]
        for name in sorted(files):
            _put(repo, os.path.join(root, name), "/".join(parts) or None, request_timeout)


def log_model_dir(
    client: MlflowClient,
    run_id: str,
    local_dir: str,
    name: str,
    artifact_path: str | None,
    request_timeout: float,
) -> None:
    """Register a saved MLflow model directory as a LoggedModel of ``run_id``.

    What ``mlflow.<flavor>.log_model`` does, done when the model is delivered (it may have
    waited in the run log for a store that was down): a LoggedModel named ``name`` whose
    source run is the run, with the run's params; the model's ``MLmodel`` updated to name
    it; its files uploaded; marked READY; recorded as the run's output; the run's last
    metric values linked to it. A store without LoggedModels (refusing the first request
    for good) gets the directory as run artifacts under ``artifact_path``. A failure after
    the model was created marks it FAILED and raises, so the delivery is retried with a
    new one.
    """
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model
    from mlflow.tracking.context.registry import resolve_tags

    try:
        run = client.get_run(run_id)
        logged = client.create_logged_model(
            experiment_id=run.info.experiment_id,
            name=name,
            source_run_id=run_id,
            params={key: str(value) for key, value in run.data.params.items()},
            tags=resolve_tags(),
        )
    except Exception as exc:
        if classify(exc) in ("transient", "server"):
            raise
        upload_artifact(client, run_id, local_dir, artifact_path, request_timeout)
        return
    model_id = str(logged.model_id)
    try:
        mlmodel = os.path.join(local_dir, "MLmodel")
        if os.path.exists(mlmodel):
            described = Model.load(mlmodel)
            described.artifact_path = logged.artifact_location
            described.model_uuid = model_id
            described.model_id = model_id
            described.run_id = run_id
            described.save(mlmodel)
        client.log_model_artifacts(model_id, local_dir)
        client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
    except Exception:
        with contextlib.suppress(Exception):
            client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
        raise
    from autolog import models

    models.registered(run_id, model_id)
    models.link_final_metrics(client, run_id, model_id)


def log_inputs(client: MlflowClient, run_id: str, inputs: list[dict[str, Any]]) -> None:
    """Log dataset inputs given as plain data (see `autolog.batching.state.InputsOp`)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    entries = [
        DatasetInput(
            Dataset(**item["dataset"]),
            tags=[InputTag(key="mlflow.data.context", value=str(item["context"]))],
        )
        for item in inputs
    ]
    client.log_inputs(run_id, datasets=entries)


def end_run(client: MlflowClient, run_id: str, status: str, end_time: int) -> None:
    """Mark the run terminated with one request.

    ``MlflowClient.set_terminated`` also stops the store's async-logging queue (which the
    store instance shares with the user's own MLflow calls) and fetches the run and its
    experiment to print a link from our background thread; only the update is ours to do.
    MLflow's own SQL store takes it as one ``UPDATE`` (`sql_bulk.end_run`).
    """
    if sql_bulk.end_run(client, run_id, status, end_time):
        return
    store: Any = getattr(getattr(client, "_tracking_client", None), "store", None)
    if store is None or not hasattr(store, "update_run_info"):  # MLflow laid out otherwise
        client.set_terminated(run_id, status, end_time)
        return
    from mlflow.entities import RunStatus

    store.update_run_info(
        run_id, run_status=RunStatus.from_string(status), end_time=end_time, run_name=None
    )


def _proxied_artifact_repo(client: MlflowClient, run_id: str) -> Any:
    try:
        from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
        from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
    except ImportError:  # pragma: no cover - MLflow laid out differently
        return None
    repo: Any = client._tracking_client._get_artifact_repo(run_id)
    # mlflow-artifacts:/ URIs only differ in how the server's URL is found.
    if type(repo) not in (HttpArtifactRepository, MlflowArtifactsRepository):
        return None
    proxied: Any = repo
    # Multipart uploads (opt-in in MLflow) take another route: leave them to MLflow.
    return None if proxied._is_multipart_upload_enabled() else proxied


def _put(repo: Any, local_file: str, artifact_dir: str | None, request_timeout: float) -> None:
    from mlflow.utils import mime_type_utils, request_utils

    name = os.path.basename(local_file)
    endpoint = posixpath.join("/", *((artifact_dir, name) if artifact_dir else (name,)))
    guess_mime_type: Any = mime_type_utils._guess_mime_type
    with open(local_file, "rb") as handle:
        response = send_once(
            repo._host_creds,
            endpoint,
            "PUT",
            request_timeout,
            data=handle,
            extra_headers={"Content-Type": guess_mime_type(name)},
        )
    raise_for_status: Any = request_utils.augmented_raise_for_status
    raise_for_status(response)


def _reason(error: BaseException | None) -> str:
    text = str(error) if error is not None else "refused"
    message = getattr(error, "message", None)
    if message is not None:
        text = str(message)
    text = " ".join(text.split())
    return f"the store refused it ({text[:300]})"


# -- clients -------------------------------------------------------------------------

_clients: dict[tuple[str, float], MlflowClient] = {}
_clients_lock = threading.Lock()


def reset_after_fork() -> None:
    global _clients_lock
    _clients_lock = threading.Lock()
    _clients.clear()


def client_for(tracking_uri: str, request_timeout: float) -> MlflowClient:
    """The shared client for ``tracking_uri`` (single-attempt HTTP with our timeout)."""
    key = (tracking_uri, float(request_timeout))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _make_client(tracking_uri, request_timeout)
            _clients[key] = client
        return client


def _make_client(tracking_uri: str, request_timeout: float) -> MlflowClient:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    if is_http(tracking_uri):
        # A future MLflow may be laid out differently; its own retries then apply, which
        # is slower to notice an outage but loses nothing.
        with contextlib.suppress(Exception):
            _bound_http(client, tracking_uri, request_timeout)
    return client


def _bound_http(client: MlflowClient, tracking_uri: str, request_timeout: float) -> None:
    """Make ``client`` send each tracking request once, with ``request_timeout``."""
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    store = single_attempt_store(tracking_uri, request_timeout)

    class SingleAttemptTrackingClient(TrackingServiceClient):
        @property
        def store(self) -> Any:
            return store

    if type(client._tracking_client) is not TrackingServiceClient:
        raise TypeError("unexpected MLflow client layout")
    tracking_class: Any = SingleAttemptTrackingClient
    client._tracking_client = tracking_class(tracking_uri)
