"""The default run backend: MLflow, written through the batching layer.

This is where a patched call meets MLflow: finding the user's active run, resolving the
tags MLflow itself puts on a run (user, source, git commit), and handing the run's writes
to `autolog.BatchLogger`. Values are redacted here, so no plugin can leak a secret
into the store by logging it under a credential-like name.

Models (`autolog.models`) and dataset inputs (`autolog.datasets`) are built on the run's
background worker, as work submitted to its logger, and written with the store's client.

System metrics follow MLflow's own switch (``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``, set by
``mlflow.enable_system_metrics_logging()``) for the runs autolog creates: MLflow's
``SystemMetricsMonitor`` samples for the run's life and its values go through the run's
logger like every other metric (`SystemMetrics`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from autolog import safety, warmup
from autolog.redaction import redact_mapping, redact_value

if TYPE_CHECKING:
    from autolog.batching import BatchLogger

__all__ = [
    "MlflowBackend",
    "MlflowSink",
    "SystemMetrics",
    "mlflow_autologging",
    "steps_aside_for_mlflow",
    "system_metrics_enabled",
]


class MlflowSink:
    """A `autolog.plugin.RunSink` over one `BatchLogger`."""

    def __init__(
        self,
        logger: BatchLogger,
        tracking_uri: str | None = None,
        system_metrics: SystemMetrics | None = None,
    ) -> None:
        self.logger = logger
        self._tracking_uri = tracking_uri
        self._system_metrics = system_metrics
        # (name, digest) of the datasets logged through this sink, by context: written and
        # read only by work on the run's worker, in order.
        self._datasets: dict[str, tuple[str, str]] = {}

    def _client(self) -> Any:
        """The store's client, for the writes the batching layer has no request for.

        Called on the worker only: the batching layer's shared client of the run's store.
        """
        from autolog.batching import logger as batching_logger
        from autolog.batching import stores
        from autolog.batching.policy import BatchPolicy

        uri = self._tracking_uri or batching_logger.current_tracking_uri()
        return stores.client_for(uri, BatchPolicy().request_timeout)

    @property
    def run_id(self) -> str | None:
        run_id: str | None = self.logger.run_id
        return run_id

    def log_metric(
        self, key: str, value: Any, step: int | None = None, timestamp: int | None = None
    ) -> None:
        self.logger.log_metric(key, value, step=step, timestamp=timestamp)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.logger.log_metrics(metrics, step=step)

    def log_param(self, key: str, value: Any) -> None:
        self.logger.log_param(key, redact_value(key, value))

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.logger.log_params(redact_mapping(params))

    def set_tag(self, key: str, value: Any) -> None:
        self.logger.set_tag(key, redact_value(key, value))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.logger.set_tags(redact_mapping(tags))

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        self.logger.log_artifact(local_path, artifact_path)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        self.logger.log_artifacts(local_dir, artifact_path)

    def log_temp_artifacts(self, local_path: str, artifact_path: str | None = None) -> None:
        from autolog.plugin import handed_over_folder

        handed_over_folder(local_path)  # raises for a folder that is not the plugin's to give
        # From here the logger owns the enclosing folder: deleted once uploaded, or moved
        # into the spool.
        self.logger.log_temp_artifacts(local_path, artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.logger.log_text(text, artifact_file)

    def log_model(
        self,
        flavor: str,
        loader: Callable[[], Any],
        artifact_path: str = "model",
        **save_kwargs: Any,
    ) -> None:
        from autolog.models import package_model
        from autolog.plugin import handed_over_folder

        temp_dir = save_kwargs.pop("temp_dir", None)
        if temp_dir is not None:
            temp_dir = handed_over_folder(temp_dir, enclosing=False, site="temp_dir")
        logger = self.logger

        def package() -> None:
            try:
                try:
                    client = self._client()
                except Exception:  # the store cannot even be opened: the run log keeps it
                    client = None
                package_model(
                    logger,
                    flavor=flavor,
                    loader=loader,
                    artifact_path=artifact_path,
                    client=client,
                    **save_kwargs,
                )
            finally:
                # The loader has read its snapshot (the packaged copy is the logger's now):
                # the folder handed over with it is ours to delete, whatever happened.
                if temp_dir is not None:
                    shutil.rmtree(temp_dir, ignore_errors=True)

        logger.submit(package, description=f"packaging the MLflow {flavor} model")

    def log_model_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, *, dataset: str | None = None
    ) -> None:
        # Logged like any metric first (the durable path), at one timestamp so that the
        # worker can then link exactly these values to the run's LoggedModel.
        timestamp = int(time.time() * 1000)
        numbers: dict[str, float] = {}
        for key, value in metrics.items():
            self.logger.log_metric(key, value, step=step, timestamp=timestamp)
            try:
                numbers[key] = float(value)
            except (TypeError, ValueError):
                continue  # reported by the batching layer as dropped
        if not numbers:
            return
        logger = self.logger

        def link() -> None:
            from autolog.models import link_metrics

            run_id = logger.run_id
            if run_id is not None:
                measured_on = None if dataset is None else self._datasets.get(dataset)
                link_metrics(
                    self._client(), run_id, numbers, step or 0, timestamp, dataset=measured_on
                )

        logger.submit(link, description="linking metrics to the logged model")

    def log_dataset(
        self,
        features: Any,
        *,
        context: str,
        targets: Any = None,
        name: str | None = None,
    ) -> None:
        from autolog.datasets import check_context

        check_context(context)
        logger = self.logger

        def log_input() -> None:
            from autolog.datasets import dataset_input

            # Described here, on the worker (a digest reads the data once); sent through
            # the run log like every other write, so an outage or a dying process keeps it.
            entry = dataset_input(features, context=context, targets=targets, name=name)
            if entry is not None:
                dataset = entry.dataset.to_dictionary()
                logger.log_inputs([{"dataset": dataset, "context": context}])
                self._datasets[context] = (entry.dataset.name, entry.dataset.digest)

        logger.submit(log_input, description=f"logging the {context} dataset")

    def send_pending(self) -> None:
        self.logger.send_pending()

    def end_run(self, status: str = "FINISHED", timeout: float | None = None) -> None:
        # Called by the core only for runs autolog created: the user's runs are let go
        # with close(), and the user knows where those are.
        if self._system_metrics is not None:
            self._system_metrics.stop()  # its last values are queued before the end
        self.logger.end_run(status, timeout, patience=_patience(timeout))
        run_id = self.logger.run_id
        if run_id is None or safety.silent():
            return  # a run still waiting in the spool: the exit line tells about it
        uri = self._tracking_uri or ""
        with contextlib.suppress(Exception):
            sys.stderr.write(where_to_look(run_id, status, uri) + "\n")
            sys.stderr.flush()

    def close(self, timeout: float | None = None) -> None:
        if self._system_metrics is not None:
            self._system_metrics.stop()
        self.logger.close(timeout, patience=_patience(timeout))

    def same_run(self) -> MlflowSink:
        """A new sink for this sink's run, even one the store has not created yet."""
        from autolog.batching import BatchLogger

        return MlflowSink(BatchLogger.same_run(self.logger))


#: The longest the end of a call's run waits for a store that keeps answering (seconds),
#: as with MLflow's own autologging, whose run is complete in the store when ``fit``
#: returns; the core's timeout then counts from the last sign of progress.
END_OF_RUN_PATIENCE = 60.0


def _patience(timeout: float | None) -> float:
    """How long the end of a run with this ``timeout`` may wait for a store that answers."""
    return 0.0 if timeout is None else max(timeout, END_OF_RUN_PATIENCE)


def where_to_look(run_id: str, status: str, tracking_uri: str) -> str:
    """The line that names a run autolog created and where to look at it.

    A tracking server: the run's page (MLflow's UI opens ``#/runs/<run_id>`` in its
    experiment). A local store (SQLite and the other SQL databases, a ``file:`` or plain
    path): the ``mlflow ui`` command that shows it, then the same page on MLflow's default
    address. A password in the URI is masked.
    """
    from autolog.batching import stores

    shown = str(redact_value("tracking_uri", tracking_uri))
    head = f"autolog: run {run_id} ({status})"
    if stores.is_http(tracking_uri):
        return f"{head}: {shown.rstrip('/')}/#/runs/{run_id}"
    if tracking_uri.startswith(_SQL_SCHEMES) or _is_local_files(tracking_uri):
        store = shown
        if _is_local_files(tracking_uri) and not tracking_uri.startswith("file:"):
            store = "file://" + os.path.abspath(tracking_uri)
        return (
            f"{head} is in {store}; to look at it run: mlflow ui --backend-store-uri "
            f"{_shell_word(store)} and open http://127.0.0.1:5000/#/runs/{run_id}"
        )
    return f"{head} is in {shown}"


def _is_local_files(uri: str) -> bool:
    """A ``file:`` URI or a plain path (MLflow's file store), not ``databricks`` and the like."""
    from urllib.parse import urlparse

    if not uri or uri.startswith("databricks"):
        return False
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text)


# MLflow's own autologging --------------------------------------------------------------


def mlflow_autologging(integrations: Iterable[str]) -> list[str]:
    """Which of MLflow's own autologging integrations (``"keras"``, ``"sklearn"``...) are on.

    ``mlflow.<name>.autolog()`` turns one on, ``mlflow.autolog()`` every one whose library
    is imported. MLflow is not imported for this: if nobody imported it, none is on.
    """
    if "mlflow" not in sys.modules:
        return []
    try:
        from mlflow.utils.autologging_utils import autologging_is_disabled
    except ImportError:  # an MLflow laid out differently: nothing to defer to
        return []
    found = []
    for name in integrations:
        try:
            if not autologging_is_disabled(name):  # type: ignore[no-untyped-call]
                found.append(name)
        except Exception:
            continue
    return found


_stepped_aside: set[str] = set()
_stepped_aside_lock = threading.Lock()


def steps_aside_for_mlflow(plugin: str, framework: str, integrations: Iterable[str]) -> bool:
    """Whether ``plugin`` leaves ``framework`` to MLflow's own autologging, saying so once.

    The rule: one framework, one autologger. Where MLflow's autologging for the framework
    is on, both would log the same training into one run, under the same param names with
    different values, and MLflow's would fail on the first difference. So the plugin lets
    the call run untouched, and the first time one line on stderr (unless
    ``autolog(silent=True)``) says who logs the framework and how to change it.
    """
    enabled = mlflow_autologging(integrations)
    if not enabled:
        return False
    with _stepped_aside_lock:
        first = plugin not in _stepped_aside
        _stepped_aside.add(plugin)
    if first and not safety.silent():
        calls = " and ".join(f"mlflow.{name}.autolog()" for name in enabled)
        offs = " and ".join(f"mlflow.{name}.autolog(disable=True)" for name in enabled)
        verb = "is" if len(enabled) == 1 else "are"
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"autolog: MLflow's own autologging logs {framework} here ({calls} {verb} on), "
                f"so autolog's {plugin} plugin leaves it alone; to have autolog log "
                f"{framework} instead, call {offs} first\n"
            )
            sys.stderr.flush()
    return True


class MlflowBackend:
    """Runs in the MLflow tracking store (``MLFLOW_TRACKING_URI`` or MLflow's default)."""

    def active_run_id(self) -> str | None:
        # A fluent run can only exist if the user imported mlflow; do not import it for them.
        if "mlflow" in sys.modules:
            import mlflow

            run = mlflow.active_run()
            if run is not None:
                return str(run.info.run_id)
        return os.environ.get("MLFLOW_RUN_ID") or None

    def prepare(self, *, log_models: bool = False) -> None:
        """Import what the first run needs, then warm up the rest in the background.

        The imports (MLflow's client side, the batching layer, GitPython, the store's
        module) happen here, on the caller's thread: a package imported by two threads at
        once can hand one of them a half-initialised module, so nothing that the script
        itself may import is imported in the background. The warm-up thread then only
        runs code: the git lookup for the run's tags, the REST client, and with
        ``log_models`` MLflow's map of installed distributions that the first packaged
        model needs (`autolog.models.warm_up`).
        """
        try:
            uri = _import_client_side(log_models=log_models)
        except Exception:  # the run itself reports real problems
            return
        warmup.submit("mlflow client", lambda: _warm_up(uri))
        if log_models:
            from autolog import models

            models.warm_up()

    def open(self, run_id: str | None, tags: Mapping[str, str]) -> MlflowSink:
        from autolog.batching import BatchLogger
        from autolog.batching.logger import current_tracking_uri

        uri = current_tracking_uri()  # the store the logger writes to, as it resolves it
        if run_id is not None:
            return MlflowSink(BatchLogger(run_id), uri)
        logger = BatchLogger.start_run(tags=redact_mapping(_context_tags(tags)))
        return MlflowSink(logger, uri, SystemMetrics.start_if_enabled(logger, uri))


# System metrics ------------------------------------------------------------------------


class SystemMetrics:
    """MLflow's ``SystemMetricsMonitor`` for one run autolog created, writing through its logger.

    Started when the run is opened if MLflow's switch is on. The run's id may not be known
    yet (the batching layer creates the run in the background), so a daemon thread waits
    for it (`BatchLogger.wait_for_run`) and then starts the monitor; the training thread
    never waits. A run whose creation was spooled (the store is down) gets no system
    metrics: the monitor reads the run's status from the store every sample. The monitor's
    samples are handed to the run's logger, so they are batched, spooled and redacted like
    every other value. `stop` ends the monitor (at most ``STOP_TIMEOUT`` seconds) before
    the run ends.
    """

    STOP_TIMEOUT = 5.0
    _warned_psutil = False

    def __init__(self, logger: BatchLogger, tracking_uri: str) -> None:
        self._logger = logger
        self._uri = tracking_uri
        self._lock = threading.Lock()
        self._stopped = False
        self._monitor: Any = None
        self._thread = threading.Thread(
            target=self._start, name="autolog-system-metrics", daemon=True
        )

    @classmethod
    def start_if_enabled(cls, logger: BatchLogger, tracking_uri: str) -> SystemMetrics | None:
        if not system_metrics_enabled():
            return None
        import importlib.util

        if importlib.util.find_spec("psutil") is None:
            if not cls._warned_psutil and not safety.silent():
                cls._warned_psutil = True
                with contextlib.suppress(Exception):
                    sys.stderr.write(
                        "autolog: MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING is on but psutil is not "
                        "installed, so runs get no system metrics; pip install psutil\n"
                    )
                    sys.stderr.flush()
            return None
        found = cls(logger, tracking_uri)
        found._thread.start()
        return found

    def _start(self) -> None:
        try:
            run_id = self._logger.wait_for_run()
            if run_id is None:
                return
            import importlib

            module: Any = importlib.import_module("mlflow.system_metrics.system_metrics_monitor")
            monitor: Any = module.SystemMetricsMonitor(run_id, tracking_uri=self._uri)
            # Its samples go to the run's logger instead of MLflow's own batch logger.
            monitor.mlflow_logger = _ThroughLogger(self._logger)
            with self._lock:
                if self._stopped:
                    return
                self._monitor = monitor
                monitor.start()
        except Exception as exc:  # system metrics never break a run
            _debug(f"autolog: no system metrics for this run ({exc})")

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            monitor, self._monitor = self._monitor, None
        if monitor is None:
            return
        # finish() joins the monitor's thread, which may be reading the run from the store:
        # never wait for it longer than STOP_TIMEOUT.
        stopper = threading.Thread(target=monitor.finish, name="autolog-system-metrics-stop")
        stopper.daemon = True
        stopper.start()
        stopper.join(self.STOP_TIMEOUT)


class _ThroughLogger:
    """What ``SystemMetricsMonitor`` uses of MLflow's ``BatchMetricsLogger``, over a BatchLogger."""

    # Read by the monitor's debug lines.
    total_training_time = 0.0
    total_log_batch_time = 0.0
    data: list[Any] = []

    def __init__(self, logger: BatchLogger) -> None:
        self._logger = logger

    def record_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._logger.log_metrics(metrics, step=step)

    def flush(self) -> None:
        """Nothing to do: the run's logger sends what it was given."""


def system_metrics_enabled() -> bool:
    """MLflow's switch: ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` (what ``enable_...`` sets)."""
    try:
        from mlflow import environment_variables
    except ImportError:
        return False
    switch: Any = environment_variables.MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
    try:
        return bool(switch.get())
    except Exception:  # a value MLflow cannot read as a boolean: MLflow's own runs fail too
        return False


def _debug(message: str) -> None:
    import logging

    logging.getLogger(__name__).debug(message)


def _import_client_side(*, log_models: bool) -> str:
    """Import the modules the first run uses; returns the tracking URI."""
    import mlflow.tracking.context.registry

    from autolog.batching import logger, stores

    # MLflow finds the git commit with GitPython, imported on first use; without it MLflow
    # logs no commit.
    with contextlib.suppress(ImportError):
        import git  # noqa: F401
    uri = logger.current_tracking_uri()
    if stores.is_http(uri):
        import mlflow.store.tracking.rest_store
    elif uri.startswith(_SQL_SCHEMES):
        import mlflow.store.tracking.sqlalchemy_store
    if log_models:
        import mlflow.utils.requirements_utils  # noqa: F401
    return uri


_SQL_SCHEMES = ("sqlite:", "postgresql", "mysql", "mssql")


def _warm_up(uri: str) -> None:
    """The first run's one-off work, done while the user's script is still setting up.

    Without it the first ``fit`` spends a few hundred milliseconds on the training thread
    and the batching worker: finding the git commit for the run's tags (MLflow caches the
    run context) and making the REST client (the batching layer caches its clients).
    Nothing is written anywhere: a SQL store is not opened, since the user may still
    point MLflow elsewhere.
    """
    from mlflow.tracking.context.registry import resolve_tags

    from autolog.batching import stores
    from autolog.batching.policy import BatchPolicy

    resolve_tags({})
    if stores.is_http(uri):
        stores.client_for(uri, BatchPolicy().request_timeout)


def _context_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` plus what MLflow's fluent API would add (user, source name, git commit)."""
    try:
        from mlflow.tracking.context.registry import resolve_tags

        return dict(resolve_tags(dict(tags)))
    except Exception:
        return dict(tags)
