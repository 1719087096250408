"""The batching layer: every MLflow write, off the training thread, validated and lossless.

`BatchLogger` is the one way autolog (and its plugins) write to MLflow. Logging
calls only enqueue; a process-wide background flusher validates the items one by one,
packs them into ``MlflowClient.log_batch`` requests within MLflow's limits, sends them
with retries, and spools what cannot be delivered for ``autolog sync``.

Modules: `.logger` (the caller's side), `.state` (queued records, operations,
per-run state), `.flusher` (background threads and
per-run ordering), `.validation` (MLflow's item rules), `.chunks` (request
packing), `.transport` (clients, retries, isolating refused items), `.runs`
(idempotent run creation), `.spool` and `.sync` (the local spool and its
delivery), `.shutdown` (exit and SIGTERM), `.policy` (tunables),
`.errors` (warnings).
"""

from __future__ import annotations

from autolog.batching.errors import AutologWarning, InvalidDataWarning
from autolog.batching.logger import BatchLogger
from autolog.batching.policy import BatchPolicy

__all__ = ["AutologWarning", "BatchLogger", "BatchPolicy", "InvalidDataWarning"]
