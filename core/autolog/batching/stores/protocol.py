"""The store-writer protocol: the six writes the batching layer makes to a tracking store.

Everything the batching layer delivers (a sender thread's requests, a replay of the run
log, ``autolog sync``, the delivery agent) goes through one `StoreWriter`, chosen once per
store by `autolog.batching.stores.writer_for`. A writer makes each write once: retries,
splitting refused requests and spooling are the policy's (`autolog.batching.transport`),
which reads a writer's exceptions with `autolog.batching.outcomes.classify`. So a writer
raises the store's own errors (MLflow's ``MlflowException`` with the store's error code,
a connection error), never swallows one, and writes the same rows whichever writer it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from autolog.batching.chunks import Chunk

__all__ = ["StoreWriter"]


class StoreWriter(Protocol):
    """Writes to one tracking store. Each method is one attempt; errors are the store's own."""

    #: Which writer this is: ``"client"`` (MLflow's public client, the reference),
    #: ``"sql"`` or ``"rest"`` (the fast paths). For logs and tests.
    kind: str

    @property
    def metrics_per_write(self) -> int:
        """How many metric rows one `write_chunk` of metrics alone may carry.

        ``MAX_METRICS`` (one ``log_batch``) unless the writer writes more in one go: the
        scheduler merges requests queued together up to it, so that a SQL store commits
        once for all of them instead of once per thousand values.
        """
        ...

    @property
    def client(self) -> MlflowClient:
        """The client of the store, for the reads the batching layer makes (search, get)."""
        ...

    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> str:
        """Create a run as ``MlflowClient.create_run`` does; return its id."""
        ...

    def write_chunk(self, run_id: str, chunk: Chunk) -> None:
        """Write one checked request (metrics, params, tags within ``log_batch``'s limits).

        The store holds afterwards what ``MlflowClient.log_batch`` of the same request
        leaves, a retried request included: nothing is stored twice. All or nothing is
        not promised: the policy resends a failed request, which is harmless.
        """
        ...

    def end_run(self, run_id: str, status: str, end_time: int) -> None:
        """Mark the run terminated with ``status`` (``FINISHED``, ``FAILED``, ``KILLED``)."""
        ...

    def upload_artifact(
        self, run_id: str, local_path: str, artifact_path: str | None, request_timeout: float
    ) -> None:
        """Upload a file, or a directory's contents, to the run's artifacts."""
        ...

    def log_model_dir(
        self,
        run_id: str,
        local_dir: str,
        name: str,
        artifact_path: str | None,
        request_timeout: float,
    ) -> None:
        """Register a saved MLflow model directory as a LoggedModel of the run.

        A store without LoggedModels gets the directory as run artifacts under
        ``artifact_path``.
        """
        ...

    def log_inputs(self, run_id: str, inputs: Sequence[Mapping[str, Any]]) -> None:
        """Log dataset inputs given as plain data (see `autolog.batching.state.InputsOp`)."""
        ...
