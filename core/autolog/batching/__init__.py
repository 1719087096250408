"""The batching layer: every MLflow write, off the training thread, logged first, lossless.

`BatchLogger` is the one way autolog (and its plugins) write to MLflow. Logging
calls only enqueue; a process-wide background flusher validates the items one by one,
appends them to the run's log (which survives the process), packs them into
``MlflowClient.log_batch`` requests within MLflow's limits and sends them with retries;
a delivery agent delivers the logs of a process that died, ``autolog sync`` what no agent
could.

Modules: `.logger` (the caller's side), `.state` (queued records, operations,
per-run state), `.flusher` (the flusher thread and the engine), whose parts are
`.engine` (shared state, sender endpoints), `.inbox` (checking what callers queued),
`.runlog` (the run log and its acks), `.scheduler` (what goes out when) and `.senders`
(the sender threads), `.lifecycle` (exit, fork); `.validation` (MLflow's item rules),
`.chunks` (request packing), `.transport` (retries, isolating refused items) and
`.outcomes` (what a failure means), `.stores` (the store writers: MLflow's public client
as the reference, the SQL and REST fast paths, one chosen per store) and `.fast_path`
(when the fast paths apply), `.runs` (idempotent run creation), `.spool` (the run-log
file) and `.sync` (delivering it), `.agent` (the delivery agent), `.shutdown` (exit),
`.policy` (tunables), `.errors` (warnings).
"""

from __future__ import annotations

from autolog.batching.errors import AutologWarning, InvalidDataWarning
from autolog.batching.logger import BatchLogger
from autolog.batching.policy import BatchPolicy

__all__ = ["AutologWarning", "BatchLogger", "BatchPolicy", "InvalidDataWarning"]
