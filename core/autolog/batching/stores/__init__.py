"""Store writers: how the batching layer writes to a tracking store, behind one protocol.

- `.protocol`: `StoreWriter`, the six writes (create a run, write a checked request, end a
  run, upload an artifact, log a model directory, log dataset inputs).
- `.client`: `ClientWriter`, the reference, on MLflow's public ``MlflowClient`` only.
- `.sql`: `SqlWriter`, the fast path for MLflow's own SQL store (bulk rows, no ORM).
- `.rest`: `RestWriter`, the fast path for a tracking server (single-attempt requests,
  lean ``log_batch`` bodies), and the client it needs.
- `.choose`: `writer_for`, which picks a client's writer once, and `client_for`, the
  shared client per store.

The fast paths use MLflow's internals, so they are switched on only inside the MLflow
versions CI tests (`autolog.batching.fast_path`); tests compare their rows with what the
reference writes. Retries, splitting refused requests and spooling are not a writer's
business (`autolog.batching.transport`): the modules here import nothing of the batching
layer above them.
"""

from __future__ import annotations

from autolog.batching.stores.choose import client_for, is_http, reset_after_fork, writer_for
from autolog.batching.stores.client import ClientWriter
from autolog.batching.stores.protocol import StoreWriter

__all__ = ["ClientWriter", "StoreWriter", "client_for", "is_http", "reset_after_fork", "writer_for"]
