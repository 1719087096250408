"""Which store writer a client gets, chosen once per client, and the shared clients.

`writer_for` answers once for each client and remembers the answer: the SQL fast path
for MLflow's own SQL store, the REST fast path for a tracking server, each only when
`autolog.batching.fast_path.enabled` (the MLflow CI tests, ``AUTOLOG_FAST_PATH`` not
``0``) and only for ``MlflowClient`` itself (a wrapper has its reasons to see each call);
else the reference writer on MLflow's public client. `client_for` hands out one client
per (tracking URI, request timeout), so the batching layer makes the choice once per store.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autolog.batching import fast_path
from autolog.batching.stores.client import ClientWriter
from autolog.batching.stores.protocol import StoreWriter

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["client_for", "is_http", "reset_after_fork", "writer_for"]

_log = logging.getLogger(__name__)


def is_http(uri: str) -> bool:
    """Whether ``uri`` names a tracking server."""
    return uri.startswith(("http://", "https://"))


# Weak: a client the caller let go (one per BatchLogger, say) takes its writer with it.
_writers: weakref.WeakKeyDictionary[Any, StoreWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer_for(client: MlflowClient) -> StoreWriter:
    """The store writer of ``client``, chosen at the first call for it (see the module)."""
    with _writers_lock:
        try:
            writer = _writers.get(client)
        except TypeError:  # a client that cannot be referenced weakly: chosen every time
            return _choose(client)
        if writer is None:
            writer = _writers[client] = _choose(client)
        return writer


def _choose(client: MlflowClient) -> StoreWriter:
    from mlflow import MlflowClient

    if type(client) is MlflowClient and fast_path.enabled():
        from autolog.batching.stores.rest import rest_writer
        from autolog.batching.stores.sql import sql_writer

        fast: list[Callable[[MlflowClient], StoreWriter | None]] = [sql_writer, rest_writer]
        for make in fast:
            try:
                writer = make(client)
            except Exception as exc:  # an MLflow laid out otherwise: no fast path
                _log.debug("no %s store writer: %r", make.__name__, exc)
                continue
            if writer is not None:
                return writer
    return ClientWriter(client)


# -- clients -------------------------------------------------------------------------

_clients: dict[tuple[str, float], MlflowClient] = {}
_clients_lock = threading.Lock()


def client_for(tracking_uri: str, request_timeout: float) -> MlflowClient:
    """The shared client for ``tracking_uri``.

    For a server, within the fast path's MLflow versions, it sends each request once with
    ``request_timeout`` and leaves retries to the policy (`autolog.batching.stores.rest`);
    otherwise it is ``MlflowClient(tracking_uri)``, whose own retries then apply: slower to
    notice an outage, but nothing is lost.
    """
    key = (tracking_uri, float(request_timeout))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _make_client(tracking_uri, request_timeout)
        return client


def _make_client(tracking_uri: str, request_timeout: float) -> MlflowClient:
    if is_http(tracking_uri) and fast_path.enabled():
        from autolog.batching.stores.rest import bounded_client

        with contextlib.suppress(Exception):  # an MLflow laid out otherwise
            return bounded_client(tracking_uri, request_timeout)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


def reset_after_fork() -> None:
    """In a forked child: locks may be held by threads that are gone, clients are shared."""
    global _clients_lock, _writers_lock
    _clients_lock = threading.Lock()
    _clients.clear()
    _writers_lock = threading.Lock()
    _writers.clear()
