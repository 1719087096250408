"""The batching layer: every MLflow write, off the training thread, validated and lossless.

:class:`BatchLogger` is the one way autolog (and its plugins) write to MLflow. Logging
calls only enqueue; a process-wide background flusher validates the items one by one,
packs them into ``MlflowClient.log_batch`` requests within MLflow's limits, sends them
with retries, and spools what cannot be delivered for ``autolog sync``.

Modules: :mod:`.logger` (the caller's side), :mod:`.state` (queued records, operations,
per-run state), :mod:`.flusher` (background threads and
per-run ordering), :mod:`.validation` (MLflow's item rules), :mod:`.chunks` (request
packing), :mod:`.transport` (clients, retries, isolating refused items), :mod:`.runs`
(idempotent run creation), :mod:`.spool` and :mod:`.sync` (the local spool and its
delivery), :mod:`.shutdown` (exit and SIGTERM), :mod:`.policy` (tunables),
:mod:`.errors` (warnings).
"""

from __future__ import annotations

from autolog.batching.errors import AutologWarning, InvalidDataWarning
from autolog.batching.logger import BatchLogger
from autolog.batching.policy import BatchPolicy

__all__ = ["AutologWarning", "BatchLogger", "BatchPolicy", "InvalidDataWarning"]
