"""Retry policy and error classification (pure logic: no store needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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


def test_sql_store_errors_are_transient() -> None:
    import sqlite3

    import sqlalchemy.exc

    locked = sqlalchemy.exc.OperationalError("INSERT ...", {}, Exception("database is locked"))
    assert classify(_wrapped(locked)) == "transient"
    assert classify(sqlite3.OperationalError("database is locked")) == "transient"


def test_classifying_a_failure_imports_nothing() -> None:
    """A sender thread classifies the first failed request, usually mid-training: importing
    SQLAlchemy there cost the training thread CPU (a process logging over HTTP never loads
    it) and risks the deadlock of two threads importing one package."""
    script = textwrap.dedent(
        """
        import sys
        import requests
        from mlflow.exceptions import MlflowException
        from autolog.batching.transport import classify

        before = set(sys.modules)
        try:
            raise requests.exceptions.ConnectionError("refused")
        except Exception:
            try:
                raise MlflowException("API request failed")
            except MlflowException as exc:
                print(classify(exc))
        print(classify(MlflowException("boom")))
        print(sorted(set(sys.modules) - before))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    transient, server, imported = done.stdout.strip().splitlines()[-3:]
    assert (transient, server) == ("transient", "server")
    assert imported == "[]"


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
