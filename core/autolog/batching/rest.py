"""MLflow's REST store as the batching layer uses it: one attempt per request, lean bodies.

Two changes to ``RestStore``, both about the sender thread's time:

* Each request is sent once, with the policy's timeout. MLflow's own client retries for
  minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``), which would hide an outage from
  `autolog.batching.transport`, the module that owns the retry policy. Statuses worth
  retrying come back as `TransientHTTPError`.
* `SingleAttemptRestStore.log_batch_rows` writes a ``LogBatch`` body straight from the
  validated rows. ``RestStore.log_batch`` turns each value into an MLflow entity, then a
  protobuf message, then a dict (protobuf's ``MessageToDict``), walks the message again to
  turn int64 strings back into numbers, and dumps it indented; the body was then parsed
  once more to be sent. The JSON is the same (``LogBatch``'s fields, int64 as numbers,
  non-finite doubles as protobuf's ``"NaN"``/``"Infinity"``/``"-Infinity"``), for a small
  fraction of the CPU, on a thread that shares the GIL with training.

URL, credentials, headers and TLS options come from MLflow's own helpers; error answers
raise MLflow's own exception with the server's error code, as they do for ``RestStore``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final

from autolog.batching.chunks import MetricRow

__all__ = ["TRANSIENT_HTTP", "TransientHTTPError", "send_once", "single_attempt_store"]

#: HTTP statuses worth retrying.
TRANSIENT_HTTP: Final = frozenset({408, 425, 429, 502, 503, 504})

_NON_FINITE: Final = {math.inf: "Infinity", -math.inf: "-Infinity"}


class TransientHTTPError(Exception):
    """The tracking server answered with a status worth retrying (one of `TRANSIENT_HTTP`)."""


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
    active_model_id = active_model_id_reader()

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
            infos = self._V3_METHOD_TO_INFO if api in self._V3_APIS else self._METHOD_TO_INFO
            self._validate_workspace_support_if_specified()
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


@functools.cache
def active_model_id_reader() -> Callable[[], str | None]:
    """MLflow 3's active logged model, which ``log_batch`` attaches to each metric."""
    try:
        from mlflow.tracking.fluent import get_active_model_id
    except ImportError:  # an MLflow before logged models
        return lambda: None
    reader: Callable[[], str | None] = get_active_model_id
    return reader
