"""The reference store writer: every write through MLflow's public ``MlflowClient`` API.

`ClientWriter` is what any store gets when no fast path applies (another kind of store,
a client that wraps MLflow's, an MLflow outside the versions CI tests, or
``AUTOLOG_FAST_PATH=0``), and what the fast paths are tested against: they must leave
the same rows. It calls only documented ``MlflowClient`` methods and public entities, so
it works with every MLflow that autolog supports; it is also slower (``log_batch`` builds
entities and, over HTTP, protobuf messages for every value), and over HTTP MLflow's own
client retries a failed request for minutes before the retry policy sees the failure.

The fast writers (`autolog.batching.stores.sql`, `autolog.batching.stores.rest`) subclass
it and override what they do faster; whatever they step aside from comes here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autolog.batching.chunks import MAX_METRICS
from autolog.batching.outcomes import classify

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from autolog.batching.chunks import Chunk, MetricRow

__all__ = ["ClientWriter", "active_model_id"]


class ClientWriter:
    """`StoreWriter` on ``MlflowClient``'s public methods (see the module doc).

    It holds its client weakly: the writers are cached per client, and a client the
    caller let go (one per ``BatchLogger``, say) must take its writer with it.
    """

    kind: str = "client"

    def __init__(self, client: MlflowClient) -> None:
        self._client_ref: Callable[[], MlflowClient | None]
        try:
            self._client_ref = weakref.ref(client)
        except TypeError:  # a client that cannot be referenced weakly is not cached either
            self._client_ref = lambda: client

    @property
    def metrics_per_write(self) -> int:
        return MAX_METRICS  # one log_batch

    @property
    def client(self) -> MlflowClient:
        client = self._client_ref()
        if client is None:
            raise ReferenceError("the client of this store writer was let go")
        return client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kind={self.kind!r}>"

    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> str:
        run = self.client.create_run(
            experiment_id, start_time=start_time, tags=dict(tags), run_name=run_name
        )
        return str(run.info.run_id)

    def write_chunk(self, run_id: str, chunk: Chunk) -> None:
        self.log_batch(run_id, chunk.metrics, chunk.params, chunk.tags)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        """``MlflowClient.log_batch`` of rows; what the fast paths fall back to.

        Metrics alone past one request's limit (requests merged for a bulk writer that
        then stepped aside) go in requests of `MAX_METRICS`.
        """
        if len(metrics) > MAX_METRICS and not params and not tags:
            for start in range(0, len(metrics), MAX_METRICS):
                self.log_batch(run_id, metrics[start : start + MAX_METRICS])
            return
        from mlflow.entities import Metric, Param, RunTag

        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, s) for k, v, ts, s in metrics],
            params=[Param(k, v) for k, v in params],
            tags=[RunTag(k, v) for k, v in tags],
        )

    def end_run(self, run_id: str, status: str, end_time: int) -> None:
        # set_terminated also ends the store's async-logging queue, shared with the user's
        # own async calls (MLflow starts it again at their next one), and, for a server,
        # prints the run's link: MLflow's own end of a run does both.
        self.client.set_terminated(run_id, status, end_time)

    def upload_artifact(
        self, run_id: str, local_path: str, artifact_path: str | None, request_timeout: float
    ) -> None:
        if os.path.isdir(local_path):
            self.client.log_artifacts(run_id, local_path, artifact_path)
        else:
            self.client.log_artifact(run_id, local_path, artifact_path)

    def log_model_dir(
        self,
        run_id: str,
        local_dir: str,
        name: str,
        artifact_path: str | None,
        request_timeout: float,
    ) -> None:
        """What ``mlflow.<flavor>.log_model`` does, done when the model is delivered.

        The model may have waited in the run log for a store that was down: a LoggedModel
        named ``name`` whose source run is the run, with the run's params; the model's
        ``MLmodel`` updated to name it; its files uploaded; marked READY; recorded as the
        run's output; the run's last metric values linked to it. A store without
        LoggedModels (refusing the first request for good) gets the directory as run
        artifacts under ``artifact_path``. A failure after the model was created marks it
        FAILED and raises, so the delivery is retried with a new one.
        """
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models import Model

        client = self.client
        try:
            run = client.get_run(run_id)
            logged = client.create_logged_model(
                experiment_id=run.info.experiment_id,
                name=name,
                source_run_id=run_id,
                params={key: str(value) for key, value in run.data.params.items()},
                tags=_context_tags(),
            )
        except Exception as exc:
            if classify(exc) in ("transient", "server"):
                raise
            self.upload_artifact(run_id, local_dir, artifact_path, request_timeout)
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

    def log_inputs(self, run_id: str, inputs: Sequence[Mapping[str, Any]]) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        entries = [
            DatasetInput(
                Dataset(**item["dataset"]),
                tags=[InputTag(key="mlflow.data.context", value=str(item["context"]))],
            )
            for item in inputs
        ]
        self.client.log_inputs(run_id, datasets=entries)


def _context_tags() -> dict[str, str]:
    """The tags MLflow's fluent ``log_model`` gives a model (user, source, git commit).

    MLflow's context providers are not part of ``MlflowClient``; a model gets no such
    tags rather than failing, should they move.
    """
    try:
        from mlflow.tracking.context.registry import resolve_tags
    except ImportError:  # pragma: no cover - MLflow laid out otherwise
        return {}
    return dict(resolve_tags())


def active_model_id() -> str | None:
    """MLflow 3's active logged model, which ``log_batch`` attaches to each metric."""
    return _active_model_id_reader()()


@functools.cache
def _active_model_id_reader() -> Callable[[], str | None]:
    try:
        from mlflow import get_active_model_id
    except ImportError:  # pragma: no cover - an MLflow before active models
        return lambda: None
    reader: Callable[[], str | None] = get_active_model_id
    return reader
