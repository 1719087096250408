"""`BatchLogger`: the caller-facing side of the batching layer.

Every logging method only appends a small tuple to the logger's inbox (a ``deque``, whose
appends are atomic) and returns: no MLflow call, no lock, no I/O (``log_text`` excepted:
it writes its temp file). Values that could change after the call (0-d arrays, framework
tensors, objects turned into param text) are captured now; timestamps are taken now, in
milliseconds. Everything else (validation, batching, sending, retrying, spooling) happens
on the background threads of `autolog.batching.flusher`.

Nothing the caller passes can make a logging method raise: bad data is reported by the
flusher with one warning per key. Only the logger's own bugs raise, and only under
``AUTOLOG_TESTING=1``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from autolog import env, safety

# shutdown: imported for its exit hook, registered on import.
from autolog.batching import flusher, runs, shutdown, stores, validation  # noqa: F401
from autolog.batching.flusher import ENGINE
from autolog.batching.policy import BatchPolicy
from autolog.batching.state import (
    BAD,
    CONTROL,
    METRIC,
    METRICS,
    PARAM,
    SEND_NOW,
    TAG,
    ArtifactOp,
    Barrier,
    CreateOp,
    EndOp,
    InputsOp,
    ModelOp,
    RunState,
    SubmitOp,
)
from autolog.batching.stores.sql import RUN_NAME_TAG
from autolog.batching.validation import eager_metric_value

if TYPE_CHECKING:
    from types import TracebackType

    from mlflow import MlflowClient

__all__ = ["BatchLogger"]

_TERMINAL_STATUSES: Final = ("FINISHED", "FAILED", "KILLED")


#: Seconds a flush or end with a timeout still waits once the store (or autolog) is seen failing.
FAILING_STORE_WAIT: Final = 0.5
_WAIT_SLICE: Final = 0.05


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: object) -> str | validation.Invalid:
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception as exc:
        return validation.Invalid(f"str() of the value failed ({type(exc).__name__}: {exc})")


def _absolute_tracking_uri(uri: str) -> str:
    # A relative SQLite path would follow later os.chdir() calls; pin it to where the
    # run was opened, so the run (and `autolog sync` later) writes to one database.
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path, sep, query = uri[len(prefix) :].partition("?")
        if path and path != ":memory:":
            return prefix + os.path.abspath(path) + sep + query
    return uri


class BatchLogger:
    """Log to one MLflow run without waiting for the tracking store.

    Args:
        run_id: The run to log to. ``None`` starts a new run, like `start_run`.
        client: An `mlflow.MlflowClient` to write through (default: one shared
            client per tracking URI, resolved now from ``mlflow.get_tracking_uri()``).
        **policy: Options of `autolog.batching.policy.BatchPolicy`
            (``flush_interval``, ``max_queue_items``, ``retry_timeout``,
            ``retry_initial_delay``, ``retry_max_delay``, ``request_timeout``,
            ``max_in_flight``, ``exit_timeout``, ``spool_dir``).

    Raises:
        TypeError: an unknown policy option (the message lists the valid ones).
        ValueError: a policy option out of range.
    """

    def __init__(
        self, run_id: str | None = None, client: MlflowClient | None = None, **policy: Any
    ) -> None:
        if run_id is None:
            started = type(self).start_run(client=client, **policy)
            self.__dict__.update(started.__dict__)
            return
        if not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run_id must be a non-empty string, got {run_id!r}")
        self._setup(BatchPolicy.from_kwargs(policy), client, run_id=run_id, create=None)

    @classmethod
    def start_run(
        cls,
        *,
        experiment_id: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        client: MlflowClient | None = None,
        **policy: Any,
    ) -> BatchLogger:
        """Start a new MLflow run in the background and return its logger at once.

        The experiment is the one MLflow would use (``experiment_id``, else the one set
        with ``mlflow.set_experiment``, ``MLFLOW_EXPERIMENT_NAME``,
        ``MLFLOW_EXPERIMENT_ID``, else the default). Values logged before the run exists
        wait for it; if it cannot be created, the creation goes to the spool with them
        and ``autolog sync`` creates the run later.
        """
        self = cls.__new__(cls)
        parsed = BatchPolicy.from_kwargs(policy)
        spec = runs.create_spec(
            run_key=uuid.uuid4().hex,
            experiment_id=None if experiment_id is None else str(experiment_id),
            run_name=None,
            tags={},
            start_time=_now_ms(),
        )
        self._setup(parsed, client, run_id=None, create=spec)
        spec["tags"] = self._clean_tags(tags or {})
        spec["run_name"] = self._clean_run_name(run_name, spec["tags"])
        self._inbox.append((CONTROL, CreateOp(spec)))
        ENGINE.nudge(self._state)
        return self

    @classmethod
    def same_run(cls, other: BatchLogger) -> BatchLogger:
        """A new logger for ``other``'s run, whether or not the store has created it yet.

        A run still being created (or waiting in the run log for a store that is down) is
        joined by its key: this logger's values reach the run ``other`` creates, and it
        never creates a second one, nor ends that run.
        """
        run_id = other.run_id
        client = other._state.make_client() if other._state.endpoint_key[0] == "client" else None
        if run_id is not None or other._state.create is None:
            joined = cls.__new__(cls)
            joined._setup(
                other._policy,
                client,
                run_id=run_id or "",
                create=None,
                tracking_uri=other._state.tracking_uri,
            )
            return joined
        self = cls.__new__(cls)
        spec = {**other._state.create, "join": True}
        self._setup(
            other._policy, client, run_id=None, create=spec, tracking_uri=other._state.tracking_uri
        )
        self._state.owns = False
        self._inbox.append((CONTROL, CreateOp(spec)))
        ENGINE.nudge(self._state)
        return self

    def _setup(
        self,
        policy: BatchPolicy,
        client: MlflowClient | None,
        *,
        run_id: str | None,
        create: dict[str, Any] | None,
        tracking_uri: str | None = None,
    ) -> None:
        if client is None:
            uri = tracking_uri or current_tracking_uri()
            timeout = policy.request_timeout
            key: tuple[Any, ...] = ("uri", uri, timeout)

            def make_client() -> MlflowClient:
                return stores.client_for(uri, timeout)

        else:
            given = client
            uri = str(getattr(client, "tracking_uri", None) or current_tracking_uri())
            key = ("client", id(client))

            def make_client() -> MlflowClient:
                return given

        self._policy = policy
        self._state = RunState(
            run_id=run_id,
            create=create,
            endpoint_key=key,
            make_client=make_client,
            tracking_uri=uri,
            policy=policy,
        )
        self._inbox = self._state.inbox
        self._closed = False
        ENGINE.register(self._state)

    def _clean_tags(self, tags: Mapping[str, Any]) -> dict[str, str]:
        clean: dict[str, str] = {}
        reporter = self._state.reporter
        try:
            items = list(tags.items())
        except Exception:
            reporter.invalid("tags", type(tags).__name__, "start_run expects a mapping of tags")
            return clean
        for key, value in items:
            name = validation.check_key(key)
            if isinstance(name, validation.Invalid):
                reporter.invalid("tag", key, name.reason)
                continue
            text = _text(value)
            if isinstance(text, validation.Invalid):
                reporter.invalid("tag", name, text.reason)
                continue
            text, problem = validation.text_value(text, validation.MAX_TAG_VALUE_LENGTH)
            if problem:
                reporter.invalid("tag", name, problem, action="changed")
            clean[name] = text
        return clean

    def _clean_run_name(self, run_name: object, tags: dict[str, str]) -> str | None:
        """The run's name as every store takes it, with the ``mlflow.runName`` tag folded in.

        The store refuses a name that contradicts that tag, and a SQL store one longer than
        its column: either refusal would keep the run, and all that is logged to it, out of
        the store. The tag is taken out of ``tags``; the store sets it from the name.
        """
        reporter = self._state.reporter
        tag = tags.pop(RUN_NAME_TAG, None)
        name: str | None = tag
        if run_name is not None:
            text = _text(run_name)
            if isinstance(text, validation.Invalid):
                reporter.invalid("run name", run_name, text.reason)
            else:
                if tag is not None and tag != text:
                    reporter.invalid(
                        "tag",
                        RUN_NAME_TAG,
                        f"it contradicts run_name={text!r}, which names the run",
                    )
                name = text
        if name is None:
            return None
        clean, problem = validation.text_value(name, validation.MAX_RUN_NAME_LENGTH)
        if problem:
            reporter.invalid("run name", name, problem, action="changed")
        return clean

    # -- the run --

    @property
    def run_id(self) -> str | None:
        """The run's id once it exists (``None`` while it is being created, or spooled)."""
        return self._state.run_id

    def wait_for_run(self, timeout: float | None = None) -> str | None:
        """Wait until the run exists (or its creation was spooled); return its id or None."""
        self._state.ready.wait(timeout)
        return self._state.run_id

    # -- logging: enqueue only --

    def log_metric(
        self, key: str, value: Any, step: int | None = None, timestamp: int | None = None
    ) -> None:
        try:
            if self._closed:
                return self._after_close("log_metric")
            if type(value) is not float and type(value) is not int:
                value = eager_metric_value(value)
            inbox = self._inbox
            if timestamp is None:
                inbox.append((METRIC, key, value, step, int(time.time() * 1000), True))
            else:
                inbox.append((METRIC, key, value, step, timestamp, False))
            if len(inbox) >= self._state.wake_at:
                ENGINE.nudge(self._state)
        except Exception as exc:
            self._bug("log_metric", exc)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        try:
            if self._closed:
                return self._after_close("log_metrics")
            timestamp = int(time.time() * 1000)
            try:
                items = list(metrics.items())  # a copy: the caller may reuse the dict
            except Exception:
                self._bad("metrics", type(metrics).__name__, "log_metrics expects a mapping")
                return None
            for index, (key, value) in enumerate(items):
                if type(value) is not float and type(value) is not int:
                    items[index] = (key, eager_metric_value(value))
            inbox = self._inbox
            inbox.append((METRICS, items, step, timestamp))
            if len(inbox) * len(items) >= self._state.wake_at:
                ENGINE.nudge(self._state)
        except Exception as exc:
            self._bug("log_metrics", exc)
        return None

    def log_param(self, key: str, value: Any) -> None:
        try:
            if self._closed:
                return self._after_close("log_param")
            self._inbox.append((PARAM, key, _text(value)))
        except Exception as exc:
            self._bug("log_param", exc)
        return None

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._pairs("log_params", PARAM, params)

    def set_tag(self, key: str, value: Any) -> None:
        try:
            if self._closed:
                return self._after_close("set_tag")
            self._inbox.append((TAG, key, _text(value)))
        except Exception as exc:
            self._bug("set_tag", exc)
        return None

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._pairs("set_tags", TAG, tags)

    def _pairs(self, site: str, kind: int, mapping: Mapping[str, Any]) -> None:
        try:
            if self._closed:
                return self._after_close(site)
            try:
                items = list(mapping.items())
            except Exception:
                self._bad(site[4:], type(mapping).__name__, f"{site} expects a mapping")
                return None
            append = self._inbox.append
            for key, value in items:
                append((kind, key, _text(value)))
            if len(self._inbox) >= self._state.wake_at:
                ENGINE.nudge(self._state)
        except Exception as exc:
            self._bug(site, exc)
        return None

    # -- artifacts and deferred work: ordered after everything logged before --

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        """Upload a file (or directory) in the background; it is read at upload time."""
        self._artifact("log_artifact", local_path, artifact_path)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload a directory's contents in the background."""
        self._artifact("log_artifacts", local_dir, artifact_path)

    def log_temp_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Hand over a directory made for this run inside a temporary folder of its own.

        Like `log_artifacts`, but the enclosing folder belongs to the logger from now on:
        it is deleted once uploaded, or moved (not copied) into the spool. Used for
        packaged models, which can be large.
        """
        self._artifact("log_temp_artifacts", local_dir, artifact_path, temp=True)

    def log_model_dir(self, local_dir: str, name: str, artifact_path: str | None = None) -> None:
        """Hand over a saved MLflow model directory, made in a temporary folder of its own,
        to be registered as the run's LoggedModel ``name`` when it is delivered.

        Like `log_temp_artifacts`, the folder is the logger's from now on. The model goes
        through the run log: a store that is down registers it once it is back; a store
        without LoggedModels gets it as run artifacts under ``artifact_path``.
        """
        try:
            if self._refuses_artifacts("log_model_dir"):
                return None
            path = os.path.abspath(os.fspath(local_dir))
            self._queue_artifact("log_model_dir", ModelOp(path, artifact_path, name=str(name)))
        except Exception as exc:
            self._bug("log_model_dir", exc)
        return None

    def _artifact(self, site: str, local_path: Any, artifact_path: Any, temp: bool = False) -> None:
        try:
            if self._refuses_artifacts(site):
                return None
            try:
                path = os.path.abspath(os.fspath(local_path))
            except TypeError:
                self._bad("artifact", repr(local_path), "local paths must be str or PathLike")
                return None
            if artifact_path is not None and not isinstance(artifact_path, str):
                artifact_path = str(_text(artifact_path))
            self._queue_artifact(site, ArtifactOp(path, artifact_path, temp=temp))
        except Exception as exc:
            self._bug(site, exc)
        return None

    def log_text(self, text: str, artifact_file: str) -> None:
        """Write ``text`` to a temp file now and upload it as ``artifact_file`` later."""
        try:
            if self._refuses_artifacts("log_text"):
                return None
            name = str(_text(artifact_file)).replace("\\", "/")
            if not name or name.startswith("/") or ".." in name.split("/"):
                self._bad("artifact", name, "artifact_file must be a relative path")
                return None
            directory, _, filename = name.rpartition("/")
            content = _text(text)
            if isinstance(content, validation.Invalid):
                self._bad("artifact", name, content.reason)
                return None
            temp_dir = tempfile.mkdtemp(prefix="autolog-text-")
            local = os.path.join(temp_dir, filename)
            with open(local, "w", encoding="utf-8", errors="replace") as handle:
                handle.write(content)
            self._queue_artifact("log_text", ArtifactOp(local, directory or None, temp=True))
        except Exception as exc:
            self._bug("log_text", exc)
        return None

    def log_inputs(self, inputs: list[dict[str, Any]]) -> None:
        """Log dataset inputs of the run, described as plain data, in order with the rest.

        Each item is ``{"dataset": {"name", "digest", "source_type", "source", "schema",
        "profile"}, "context": "train"}`` (``mlflow.data``'s ``Dataset.to_dict()`` and the
        ``mlflow.data.context`` tag). They go through the run log like every other write:
        a store that is down, or a process that dies, does not lose them.
        """
        try:
            if self._refuses_artifacts("log_inputs"):
                return None
            items = [
                {"dataset": dict(item["dataset"]), "context": str(item["context"])}
                for item in inputs
            ]
            if not items:
                return None
            op = InputsOp(items)
            if ENGINE.follow_up(self._state, op):  # from this run's submitted work
                return None
            if self._closed:
                return self._after_close("log_inputs")
            self._control(op)
        except (KeyError, TypeError) as exc:
            self._bad("dataset", "inputs", f"log_inputs expects dataset dicts ({exc})")
        except Exception as exc:
            self._bug("log_inputs", exc)
        return None

    # Work submitted to this run (model packaging) may log artifacts after end_run()
    # closed the logger: they are queued right after that work, so before the run's end.

    def _refuses_artifacts(self, site: str) -> bool:
        if self._closed and not flusher.in_worker_thread():
            self._after_close(site)
            return True
        return False

    def _queue_artifact(self, site: str, op: ArtifactOp) -> None:
        if ENGINE.follow_up(self._state, op):  # False unless in this run's submitted work
            return
        if self._closed:
            if op.temp:
                shutil.rmtree(os.path.dirname(op.local_path), ignore_errors=True)
            self._after_close(site)
            return
        self._control(op)

    def submit(self, fn: Callable[[], None], *, description: str) -> None:
        """Run ``fn`` on this run's background worker, after everything logged before.

        Exceptions are reported as a warning naming ``description``, never raised.
        """
        try:
            if self._closed:
                return self._after_close("submit")
            if not callable(fn):
                self._bad("submit", description, "submit expects a callable")
                return None
            self._control(SubmitOp(fn, str(description)))
        except Exception as exc:
            self._bug("submit", exc)
        return None

    # -- flushing and ending --

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything accepted so far is in the store or in the spool.

        With a ``timeout`` (s), what is still not delivered by then is spooled, and the
        run keeps spooling until the store answers again.
        """
        try:
            if not self._closed:
                self._wait(self._control(Barrier()), timeout)
        except Exception as exc:
            self._bug("flush", exc)
        self._raise_background_errors()

    def send_pending(self) -> None:
        """Start sending what was accepted so far, without waiting for it; returns at once.

        Values otherwise wait up to ``flush_interval`` to fill a request. Called when a
        training loop is done, the last ones travel while the caller still wraps up
        (saves a model, reads summaries) instead of after, when it calls `end_run`.
        It is no barrier: nothing logged afterwards waits for these to be delivered.
        """
        try:
            if not self._closed:
                self._control(SEND_NOW)
        except Exception as exc:
            self._bug("send_pending", exc)

    def end_run(
        self, status: str = "FINISHED", timeout: float | None = None, *, patience: float = 0.0
    ) -> None:
        """Flush, and mark the run terminated (spooled if undeliverable).

        The end goes out once everything before it is sent; with a server it need not
        wait for the answers to the last metric requests and uploads.

        With a ``timeout`` (s), what is not delivered by then is spooled. A ``patience``
        longer than it lets the wait go on past ``timeout`` for as long as the run's
        delivery is moving (an operation finished within the last ``timeout`` seconds,
        or local work such as packaging a model is running), up to ``patience`` seconds
        in all; a store seen failing still ends the wait at once.

        The logger accepts nothing afterwards.
        """
        try:
            if self._closed:
                return self._after_close("end_run")
            if status not in _TERMINAL_STATUSES:
                self._bad("run status", status, f"expected one of {', '.join(_TERMINAL_STATUSES)}")
                status = "FINISHED"
            self._control(EndOp(status, _now_ms()))
            barrier = self._control(Barrier(final=True, close=True))
            self._closed = True
            self._wait(barrier, timeout, patience)
        except Exception as exc:
            self._bug("end_run", exc)
        self._raise_background_errors()
        return None

    def close(self, timeout: float | None = None, *, patience: float = 0.0) -> None:
        """Flush and stop accepting data. Does not end the run.

        With a ``timeout`` (s), what is still not delivered by then is spooled, as with
        `flush`; ``patience`` as for `end_run`. A closed logger no longer costs the
        flusher anything.
        """
        try:
            if self._closed:
                return None
            barrier = self._control(Barrier(final=True, close=True))
            self._closed = True
            self._wait(barrier, timeout, patience)
        except Exception as exc:
            self._bug("close", exc)
        self._raise_background_errors()
        return None

    def __enter__(self) -> BatchLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._state
        return f"<BatchLogger {state.label} -> {state.tracking_uri}>"

    # -- helpers --

    def _control(self, op: Any) -> Any:
        self._inbox.append((CONTROL, op))
        ENGINE.nudge(self._state)
        return op

    def _wait(self, barrier: Barrier, timeout: float | None, patience: float = 0.0) -> None:
        if flusher.in_worker_thread():
            return  # called from submitted work: it cannot wait for itself
        state = self._state
        if timeout is None:
            while not barrier.done.wait(1.0):
                ENGINE.ensure_started(state)
            return
        if not self._wait_while_worthwhile(barrier, timeout, patience):
            state.force_spool = True
            state.abort_requests()
            ENGINE.wake.set()
            # A short grace for the flusher to move what is left into the spool.
            barrier.done.wait(2.0)

    def _wait_while_worthwhile(self, barrier: Barrier, timeout: float, patience: float) -> bool:
        """Wait for ``barrier`` up to ``timeout``; ``False`` to give up and spool.

        While the store is failing (the run spools, or a request has just failed), the
        rest would only wait for retries or a hung connection; after an internal error of
        the batching layer for this run, for work that may never be done. Either way,
        give up after `FAILING_STORE_WAIT` instead of the whole ``timeout``. With a
        ``patience`` past ``timeout``, a wait whose delivery is still moving goes on (a
        model that takes 8 s to package on a busy machine is in the store when ``fit``
        returns), and one that has stalled for ``timeout`` seconds ends.
        """
        state = self._state
        timeout = max(0.0, timeout)
        began = time.monotonic()
        last_call = began + max(timeout, patience)
        while not barrier.done.wait(_WAIT_SLICE):
            now = time.monotonic()
            failing = (
                state.spooling
                or state.last_failure > began - FAILING_STORE_WAIT
                or bool(state.errors)
            )
            if failing and now - began >= FAILING_STORE_WAIT:
                return False
            if now >= last_call:
                return False
            if now - began >= timeout and not self._moving(now, timeout):
                return False
        return True

    def _moving(self, now: float, window: float) -> bool:
        """Whether the run's delivery moves: an operation finished within ``window``
        seconds, or local work (a model being packaged) is running now."""
        state = self._state
        if now - state.last_progress < window:
            return True
        with ENGINE.lock:  # the in-flight set is the engine's, changed under its lock
            return any(isinstance(op, SubmitOp) for op in state.inflight)

    def _bad(self, kind: str, key: object, reason: str) -> None:
        self._inbox.append((BAD, kind, key, reason))

    def _after_close(self, site: str) -> None:
        self._state.reporter.problem(
            "closed", f"{site}() called after close()/end_run(); the data was ignored."
        )

    def _bug(self, site: str, exc: Exception) -> None:
        if env.testing():
            raise exc
        safety.warn(
            f"autolog: BatchLogger.{site} failed ({type(exc).__name__}: {exc}); the value "
            "was not logged. Please report this bug.",
            once_key=("batching", site),
            stacklevel=3,
        )

    def _raise_background_errors(self) -> None:
        errors = self._state.errors
        if errors and env.testing():
            first = errors[0]
            errors.clear()
            raise first


def current_tracking_uri() -> str:
    """MLflow's tracking URI as of now (importing MLflow only if someone else did)."""
    if "mlflow" not in sys.modules:
        # Nobody could have called mlflow.set_tracking_uri(): the environment decides,
        # and a 2-second import stays off the caller's thread.
        explicit = os.environ.get("MLFLOW_TRACKING_URI")
        if explicit:
            return _absolute_tracking_uri(explicit)
    import mlflow

    return _absolute_tracking_uri(mlflow.get_tracking_uri())
