"""Retry policy and error classification (pure logic: no store needed)."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException

from autolog.batching.transport import Retry, TransientHTTPError, call, classify


def _wrapped(cause: BaseException) -> MlflowException:
    # What MLflow's REST client raises: its own exception, the network error as context.
    try:
        raise cause
    except BaseException:
        try:
            raise MlflowException("API request failed with exception ...")
        except MlflowException as exc:
            return exc


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (_wrapped(requests.exceptions.ConnectionError("refused")), "transient"),
        (_wrapped(requests.exceptions.ReadTimeout("slow")), "transient"),
        (TransientHTTPError("HTTP 503"), "transient"),
        (RestException({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "429"}), "transient"),
        (RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}), "item"),
        (RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"}), "run"),
        (MlflowException("The run abc must be in the 'active' state."), "run"),
        (MlflowException("boom"), "server"),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogate"), "item"),
    ],
)
def test_classify(error: BaseException, outcome: str) -> None:
    assert classify(error) == outcome


def _retry(timeout: float = 0.3, abort: threading.Event | None = None) -> Retry:
    return Retry(
        timeout=timeout, initial_delay=0.01, max_delay=0.02, abort=abort or threading.Event()
    )


def test_transient_failures_are_retried_until_success() -> None:
    attempts = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 4:
            raise ConnectionError("down")

    assert call(flaky, _retry()) == ("ok", None)
    assert len(attempts) == 4


def test_transient_failures_give_up_at_the_deadline() -> None:
    start = time.monotonic()
    outcome, error = call(lambda: (_ for _ in ()).throw(ConnectionError("down")), _retry(0.2))
    assert outcome == "transient" and isinstance(error, ConnectionError)
    assert 0.2 <= time.monotonic() - start < 1.0


def test_abort_stops_retrying_at_once() -> None:
    abort = threading.Event()
    abort.set()
    start = time.monotonic()
    outcome, _ = call(lambda: (_ for _ in ()).throw(ConnectionError("down")), _retry(30, abort))
    assert outcome == "transient" and time.monotonic() - start < 0.5


def test_server_errors_are_retried_a_few_times_then_treated_as_refusal() -> None:
    attempts = []

    def failing() -> None:
        attempts.append(1)
        raise MlflowException("internal error")

    outcome, _ = call(failing, _retry(30))
    assert outcome == "item" and len(attempts) == 3
