"""An in-memory run backend, for asserting on what a plugin logs without a tracking store.

    with autolog.testing.capture() as store:
        model.fit(x, y)
    run = store.last_run()
    assert run.params["epochs"] == "3"
    assert run.metric_history("loss") == [(0, 0.9), (1, 0.7), (2, 0.6)]

Values are stored the way MLflow stores them: params and tags as strings, metrics as
floats with their step.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from autolog import session
from autolog.batching.errors import InvalidDataWarning
from autolog.datasets import check_context
from autolog.plugin import handed_over_folder
from autolog.redaction import redact_mapping, redact_value

__all__ = ["MemoryStore", "RecordedRun", "capture"]


@dataclass
class RecordedRun:
    """Everything logged into one run of a `MemoryStore`, stored as MLflow would store it.

        run = store.last_run()
        assert run.params["epochs"] == "3"
        assert run.status == "FINISHED"

    Attributes:
        run_id: The run's id: ``"run-1"``, ``"run-2"``, ... for runs autolog started,
            ``"user-…"`` for runs made with `MemoryStore.start_user_run`.
        params: Params by name, as strings (credential-like values redacted).
        tags: Run tags by name, as strings.
        metrics: Every value of every metric, in logging order: ``{name: [(step, value),
            ...]}``.
        artifacts: Artifacts by their path in the run (``"model_summary.txt"``), each mapped
            to the local copy the store kept (removed when the `capture` block ends).
        models: One dict per `RunSink.log_model` call: ``flavor``, ``artifact_path``, the
            loaded ``model`` object and any save arguments. The model is loaded, not
            packaged.
        model_metrics: Metrics linked to the run's model: the final values when it was
            logged, then those given to ``log_model_metrics``.
        datasets: One ``{"context", "features", "targets", "name"}`` dict per
            ``log_dataset`` call.
        status: ``"RUNNING"`` until autolog ends the run, then ``"FINISHED"`` or
            ``"FAILED"``.
        created_by_autolog: Whether autolog started this run (``False`` for the user's own
            run).
    """

    run_id: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    model_metrics: dict[str, float] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    status: str = "RUNNING"
    created_by_autolog: bool = False

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        """The ``(step, value)`` pairs of one metric, in logging order (empty if never
        logged)."""
        return list(self.metrics.get(key, []))

    def last_metric(self, key: str) -> float:
        """The last value logged for a metric; ``KeyError`` if it was never logged."""
        return self.metrics[key][-1][1]


class _MemorySink:
    def __init__(self, store: MemoryStore, run: RecordedRun) -> None:
        self._store = store
        self._run = run
        self._steps = itertools.count()

    @property
    def run_id(self) -> str | None:
        return self._run.run_id

    def log_metric(
        self, key: str, value: Any, step: int | None = None, timestamp: int | None = None
    ) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            # What the real sink does with a value that is not a number: report, drop.
            reason = f"metric values must be numbers ({type(exc).__name__}: {exc})"
            warnings.warn(
                InvalidDataWarning(
                    f"autolog: metric {key!r} dropped: {reason}",
                    kind="metric",
                    key=key,
                    reason=reason,
                ),
                stacklevel=2,
            )
            return
        with self._store.lock:
            self._run.metrics.setdefault(key, []).append((step or 0, number))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        with self._store.lock:
            for key, value in redact_mapping(params).items():
                text = str(value)
                old = self._run.params.get(key)
                if old is not None and old != text:
                    self._store.conflicts.append((self._run.run_id, key, old, text))
                    continue
                self._run.params[key] = text

    def set_tag(self, key: str, value: Any) -> None:
        with self._store.lock:
            self._run.tags[key] = str(redact_value(key, value))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def _keep(self, local_path: str, artifact_path: str | None) -> None:
        name = os.path.basename(local_path.rstrip("/"))
        dest_name = f"{artifact_path}/{name}" if artifact_path else name
        dest = os.path.join(self._store.artifact_root, self._run.run_id, dest_name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.isdir(local_path):
            shutil.copytree(local_path, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(local_path, dest)
        with self._store.lock:
            self._run.artifacts[dest_name] = dest

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        self._keep(local_path, artifact_path)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        for entry in sorted(os.listdir(local_dir)):
            self._keep(os.path.join(local_dir, entry), artifact_path)

    def log_temp_artifacts(self, local_path: str, artifact_path: str | None = None) -> None:
        # As the real sink: the enclosing folder is ours now. What the run keeps is copied
        # into the store's artifact root, then the folder is deleted at once, so a test
        # sees the plugin left nothing behind.
        folder = handed_over_folder(local_path)
        try:
            if os.path.isdir(local_path):
                self.log_artifacts(local_path, artifact_path)
            else:
                self._keep(local_path, artifact_path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def log_text(self, text: str, artifact_file: str) -> None:
        dest = os.path.join(self._store.artifact_root, self._run.run_id, artifact_file)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8") as handle:
            handle.write(text)
        with self._store.lock:
            self._run.artifacts[artifact_file] = dest

    def log_model(
        self,
        flavor: str,
        loader: Callable[[], Any],
        artifact_path: str = "model",
        **save_kwargs: Any,
    ) -> None:
        temp_dir = save_kwargs.pop("temp_dir", None)
        if temp_dir is not None:
            # Owned by the store until the capture block ends, not deleted after loading:
            # the recorded model may read its snapshot lazily (a test predicts with it).
            folder = handed_over_folder(temp_dir, enclosing=False, site="temp_dir")
            with self._store.lock:
                self._store.handed_over.append(folder)
        # Loading proves the snapshot is usable; packaging is MLflow's job, not tested here.
        model = loader()
        with self._store.lock:
            self._run.models.append(
                {"flavor": flavor, "artifact_path": artifact_path, "model": model, **save_kwargs}
            )
            # As the real sink does: the run's final values are linked to the new model.
            self._run.model_metrics = {key: h[-1][1] for key, h in self._run.metrics.items() if h}

    def log_model_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, *, dataset: str | None = None
    ) -> None:
        self.log_metrics(metrics, step)
        with self._store.lock:
            if not self._run.models:
                return
            for key in metrics:
                if key in self._run.metrics:
                    self._run.model_metrics[key] = self._run.metrics[key][-1][1]

    def log_dataset(
        self,
        features: Any,
        *,
        context: str,
        targets: Any = None,
        name: str | None = None,
    ) -> None:
        check_context(context)
        with self._store.lock:
            self._run.datasets.append(
                {"context": context, "features": features, "targets": targets, "name": name}
            )

    def send_pending(self) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None

    def end_run(self, status: str = "FINISHED", timeout: float | None = None) -> None:
        with self._store.lock:
            self._run.status = status


class MemoryStore:
    """Runs kept in memory instead of a tracking store: what `capture` yields.

    autolog writes into it exactly as into MLflow (it is a ``RunBackend``, the interface
    the core opens runs through), so a test asserts on `runs` or `last_run` instead of
    reading a tracking store. Values are stored the way MLflow stores them (see
    `RecordedRun`).

    Attributes:
        runs: every run, by id, in the order they were opened.
        conflicts: params logged twice with different values, as
            ``(run_id, key, first value, ignored value)``; the first value is kept, as
            in MLflow.
        active: the run id `start_user_run` made, standing in for the user's active
            MLflow run (``None``: there is none).
        lock: guards the runs; hold it to read them while training threads log.
        artifact_root: the temporary directory holding logged artifacts (removed when
            the `capture` block ends).
        handed_over: folders handed over with a model (``temp_dir`` of
            `RunSink.log_model`), deleted when the `capture` block ends.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.runs: dict[str, RecordedRun] = {}
        self.conflicts: list[tuple[str, str, str, str]] = []
        self.active: str | None = None
        self._ids = itertools.count(1)
        self.artifact_root = tempfile.mkdtemp(prefix="autolog-memory-")
        self.handed_over: list[str] = []

    # RunBackend ------------------------------------------------------------------------

    def active_run_id(self) -> str | None:
        """The user's active run, as ``mlflow.active_run()`` would give it (see
        `start_user_run`)."""
        return self.active

    def prepare(self, *, log_models: bool = False) -> None:
        """Nothing to warm up in memory (the MLflow backend opens its store here)."""
        return None

    def open(self, run_id: str | None, tags: Mapping[str, str]) -> _MemorySink:
        """Open a sink on run ``run_id`` (a new run when ``None``) with ``tags`` set."""
        with self.lock:
            if run_id is None:
                run_id = f"run-{next(self._ids)}"
                self.runs[run_id] = RecordedRun(run_id, created_by_autolog=True)
            run = self.runs.setdefault(run_id, RecordedRun(run_id))
        sink = _MemorySink(self, run)
        sink.set_tags(tags)
        return sink

    # Helpers for tests ---------------------------------------------------------------

    def start_user_run(self) -> str:
        """Simulate ``mlflow.start_run()`` by the user: later calls log into it."""
        with self.lock:
            run_id = f"user-{next(self._ids)}"
            self.runs[run_id] = RecordedRun(run_id)
            self.active = run_id
        return run_id

    def last_run(self) -> RecordedRun:
        """The run opened last; ``AssertionError`` when no run was logged at all."""
        with self.lock:
            if not self.runs:
                raise AssertionError("no run was logged")
            return list(self.runs.values())[-1]

    def close(self) -> None:
        """Remove the logged artifacts' copies and the folders handed over with models
        (`capture` does this when its block ends)."""
        shutil.rmtree(self.artifact_root, ignore_errors=True)
        with self.lock:
            folders, self.handed_over = self.handed_over, []
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def capture() -> Iterator[MemoryStore]:
    """Route every autolog write to a fresh `MemoryStore` for the block.

        with autolog.testing.capture() as store:
            model.fit(x, y)
        assert store.last_run().metric_history("loss")

    Yields:
        The store; runs stay readable after the block, their artifact copies do not.
    """
    store = MemoryStore()
    previous = session.set_backend(store)
    try:
        yield store
    finally:
        session.set_backend(previous)
        session.instance_runs.clear()
        store.close()
