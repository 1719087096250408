"""The REST fast path: MLflow's REST store with one attempt per request and lean bodies.

`bounded_client` makes the client `autolog.batching.stores.client_for` hands out for a
tracking server (inside the MLflow versions CI tests), and `RestWriter` is its
`StoreWriter`. Three changes to how ``MlflowClient`` talks to a server, all about the
sender thread's time:

* Each request is sent once, with the policy's timeout. MLflow's own client retries for
  minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``), which would hide an outage from
  `autolog.batching.transport`, the module that owns the retry policy. Statuses worth
  retrying come back as `TransientHTTPError`. Artifacts through the server's proxy
  (``mlflow-artifacts:``) are sent the same way.
* `SingleAttemptRestStore.log_batch_rows` writes a ``LogBatch`` body straight from the
  validated rows. ``RestStore.log_batch`` turns each value into an MLflow entity, then a
  protobuf message, then a dict (protobuf's ``MessageToDict``), walks the message again to
  turn int64 strings back into numbers, and dumps it indented; the body was then parsed
  once more to be sent. The JSON is the same (``LogBatch``'s fields, int64 as numbers,
  non-finite doubles as protobuf's ``"NaN"``/``"Infinity"``/``"-Infinity"``), for a small
  fraction of the CPU, on a thread that shares the GIL with training.
* A run's end is one ``update_run_info`` request, without what ``set_terminated`` adds
  (stopping the store's async-logging queue, which the user's own calls share, and
  fetching the run and its experiment to print a link from a background thread).

URL, credentials, headers and TLS options come from MLflow's own helpers; error answers
raise MLflow's own exception with the server's error code, as they do for ``RestStore``.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from autolog.batching.chunks import MetricRow
from autolog.batching.outcomes import TRANSIENT_HTTP, TransientHTTPError
from autolog.batching.stores.client import ClientWriter, active_model_id

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from autolog.batching.chunks import Chunk

__all__ = [
    "TRANSIENT_HTTP",
    "RestWriter",
    "TransientHTTPError",
    "bounded_client",
    "log_batch_body",
    "rest_writer",
    "send_once",
    "single_attempt_store",
]

_NON_FINITE: Final = {math.inf: "Infinity", -math.inf: "-Infinity"}


def send_once(host_creds: Any, endpoint: str, method: str, timeout: float, **request: Any) -> Any:
    """One HTTP request through MLflow's ``http_request``, without MLflow's own retries.

    A status worth retrying raises `TransientHTTPError`; any other response is returned.
    """
    from mlflow.utils import rest_utils

    http_request: Any = rest_utils.http_request  # untyped
    response = http_request(
        host_creds,
        endpoint,
        method,
        max_retries=0,
        backoff_factor=0,
        backoff_jitter=0,
        timeout=timeout,
        raise_on_status=False,
        **request,
    )
    if response.status_code in TRANSIENT_HTTP:
        raise TransientHTTPError(
            f"{method} {endpoint}: HTTP {response.status_code} {response.text[:200]}"
        )
    return response


def _double(value: float) -> float | str:
    if value != value:
        return "NaN"
    return _NON_FINITE.get(value, value)


def log_batch_body(
    run_id: str,
    metrics: Sequence[MetricRow],
    params: Sequence[tuple[str, str]] = (),
    tags: Sequence[tuple[str, str]] = (),
    model_id: str | None = None,
) -> dict[str, Any]:
    """The JSON of MLflow's ``LogBatch`` message for rows already checked by the flusher."""
    body: dict[str, Any] = {"run_id": run_id}
    if metrics:
        finite = math.isfinite
        rows = [
            {
                "key": key,
                "value": value if finite(value) else _double(value),
                "timestamp": timestamp,
                "step": step,
            }
            for key, value, timestamp, step in metrics
        ]
        if model_id:
            for row in rows:
                row["model_id"] = model_id
        body["metrics"] = rows
    if params:
        body["params"] = [{"key": key, "value": value} for key, value in params]
    if tags:
        body["tags"] = [{"key": key, "value": value} for key, value in tags]
    return body


def single_attempt_store(tracking_uri: str, request_timeout: float) -> Any:
    """A ``RestStore`` for ``tracking_uri`` that sends each request once; see the module."""
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.utils import proto_json_utils, rest_utils
    from mlflow.utils.credentials import get_default_host_creds

    # MLflow's helpers are untyped; call them through Any.
    verify_rest_response: Any = rest_utils.verify_rest_response
    parse_dict: Any = proto_json_utils.parse_dict

    class SingleAttemptRestStore(RestStore):
        def _call_endpoint(
            self,
            api: Any,
            json_body: Any = None,
            endpoint: Any = None,
            retry_timeout_seconds: Any = None,
            response_proto: Any = None,
        ) -> Any:
            body = json.loads(json_body) if json_body is not None else None
            return self._send(api, body, endpoint, response_proto)

        def log_batch_rows(
            self,
            run_id: str,
            metrics: Sequence[MetricRow],
            params: Sequence[tuple[str, str]] = (),
            tags: Sequence[tuple[str, str]] = (),
        ) -> None:
            """``log_batch`` for rows the flusher has checked (limits, types, keys)."""
            model_id = active_model_id() if metrics else None
            self._send(LogBatch, log_batch_body(run_id, metrics, params, tags, model_id))

        def _send(
            self, api: Any, body: Any, endpoint: Any = None, response_proto: Any = None
        ) -> Any:
            # MLflow's later 3.x minors route some APIs to v3 endpoints and check workspace
            # support first; the earlier ones have one table and no workspaces.
            if api in getattr(self, "_V3_APIS", ()):
                infos = self._V3_METHOD_TO_INFO
            else:
                infos = self._METHOD_TO_INFO
            validate = getattr(self, "_validate_workspace_support_if_specified", None)
            if validate is not None:
                validate()
            default_endpoint, method = infos[api]
            endpoint = endpoint or default_endpoint
            response_proto = response_proto or api.Response()
            response = send_once(
                self.get_host_creds(),
                endpoint,
                method,
                request_timeout,
                **({"params": body} if method == "GET" else {"json": body}),
            )
            response = verify_rest_response(response, endpoint)
            if response.status_code == 204 or not response.text.strip():
                return response_proto
            parse_dict(js_dict=json.loads(response.text), message=response_proto)
            return response_proto

    store_class: Any = SingleAttemptRestStore
    return store_class(partial(get_default_host_creds, tracking_uri))


def bounded_client(tracking_uri: str, request_timeout: float) -> MlflowClient:
    """An ``MlflowClient`` for a server that sends each request once, with ``request_timeout``.

    Raises when MLflow is laid out otherwise than this module knows.
    """
    from mlflow import MlflowClient
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    _check_layout()
    client = MlflowClient(tracking_uri)
    store = single_attempt_store(tracking_uri, request_timeout)

    class SingleAttemptTrackingClient(TrackingServiceClient):
        @property
        def store(self) -> Any:
            return store

    if type(client._tracking_client) is not TrackingServiceClient:
        raise TypeError("unexpected MLflow client layout")
    tracking_class: Any = SingleAttemptTrackingClient
    client._tracking_client = tracking_class(tracking_uri)
    return client


_HTTP_REQUEST_ARGS: Final = ("max_retries", "backoff_factor", "backoff_jitter", "timeout")


def _check_layout() -> None:
    """Raise unless MLflow's REST helpers are laid out as `single_attempt_store` uses them."""
    import inspect

    from mlflow.store.tracking import rest_store
    from mlflow.utils import proto_json_utils, rest_utils

    takes = inspect.signature(rest_utils.http_request).parameters
    missing = [name for name in (*_HTTP_REQUEST_ARGS, "raise_on_status") if name not in takes]
    tables = getattr(rest_store.RestStore, "_METHOD_TO_INFO", None)
    if missing or tables is None or not hasattr(rest_utils, "verify_rest_response"):
        raise TypeError(f"MLflow's REST helpers are laid out otherwise ({missing or 'tables'})")
    if not hasattr(proto_json_utils, "parse_dict"):
        raise TypeError("MLflow's REST helpers are laid out otherwise (parse_dict)")


class RestWriter(ClientWriter):
    """`StoreWriter` for a tracking server (see the module doc)."""

    kind = "rest"

    def __init__(self, client: MlflowClient, store: Any) -> None:
        super().__init__(client)
        self._store = store

    def write_chunk(self, run_id: str, chunk: Chunk) -> None:
        rows_writer = getattr(self._store, "log_batch_rows", None)
        if rows_writer is None:  # a plain RestStore (a client made elsewhere)
            super().write_chunk(run_id, chunk)
            return
        rows_writer(run_id, chunk.metrics, chunk.params, chunk.tags)

    def end_run(self, run_id: str, status: str, end_time: int) -> None:
        from mlflow.entities import RunStatus

        self._store.update_run_info(
            run_id, run_status=RunStatus.from_string(status), end_time=end_time, run_name=None
        )

    def upload_artifact(
        self, run_id: str, local_path: str, artifact_path: str | None, request_timeout: float
    ) -> None:
        """Through the server's artifact proxy (``mlflow-artifacts:``, what ``mlflow server``
        uses by default) each file is sent once with ``request_timeout``: MLflow's artifact
        client retries on its own for minutes, which would hold up the end of a run while
        the server is down, out of reach of the retry policy and its cutoff. Other artifact
        stores (S3, a shared folder, ...) go through MLflow's client."""
        repo = _proxied_artifact_repo(self.client, run_id)
        if repo is None:
            super().upload_artifact(run_id, local_path, artifact_path, request_timeout)
            return
        if not os.path.isdir(local_path):
            _put(repo, local_path, artifact_path, request_timeout)
            return
        for root, _dirs, files in os.walk(local_path):
            relative = os.path.relpath(root, local_path)
            parts = [p for p in (artifact_path, relative.replace(os.sep, "/")) if p and p != "."]
            for name in sorted(files):
                _put(repo, os.path.join(root, name), "/".join(parts) or None, request_timeout)


def rest_writer(client: MlflowClient) -> RestWriter | None:
    """The REST fast path for ``client``'s store, or ``None`` when it is not a server's."""
    from mlflow.store.tracking.rest_store import RestStore

    store = client._tracking_client.store
    if not isinstance(store, RestStore):
        return None
    _check_layout()
    if type(store) is not RestStore and not hasattr(store, "log_batch_rows"):
        return None  # a subclass (Databricks', a plugin's) may send otherwise
    return RestWriter(client, store)


def _proxied_artifact_repo(client: MlflowClient, run_id: str) -> Any:
    try:
        from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
        from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
    except ImportError:  # pragma: no cover - MLflow laid out differently
        return None
    repo: Any = client._tracking_client._get_artifact_repo(run_id)
    # mlflow-artifacts:/ URIs only differ in how the server's URL is found.
    if type(repo) not in (HttpArtifactRepository, MlflowArtifactsRepository):
        return None
    proxied: Any = repo
    # Multipart uploads (opt-in in MLflow) take another route: leave them to MLflow.
    return None if proxied._is_multipart_upload_enabled() else proxied


def _put(repo: Any, local_file: str, artifact_dir: str | None, request_timeout: float) -> None:
    from mlflow.utils import mime_type_utils, request_utils

    name = os.path.basename(local_file)
    endpoint = posixpath.join("/", *((artifact_dir, name) if artifact_dir else (name,)))
    guess_mime_type: Any = mime_type_utils._guess_mime_type
    with open(local_file, "rb") as handle:
        response = send_once(
            repo._host_creds,
            endpoint,
            "PUT",
            request_timeout,
            data=handle,
            extra_headers={"Content-Type": guess_mime_type(name)},
        )
    raise_for_status: Any = request_utils.augmented_raise_for_status
    raise_for_status(response)
