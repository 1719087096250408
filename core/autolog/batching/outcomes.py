"""What a failed store call means for the data it carried: `classify` and its vocabulary.

Shared by the store writers (`autolog.batching.stores`, which decide with it whether a
store lacks a feature or is only down) and by the retry policy (`autolog.batching.transport`,
which retries, splits or spools by it). It imports neither.
"""

from __future__ import annotations

import sys
from typing import Final, Literal

__all__ = ["TRANSIENT_HTTP", "Outcome", "TransientHTTPError", "classify"]

#: ``ok``: delivered; ``transient``: try again later; ``server``: the server failed, maybe
#: on one item; ``item``: the store refuses something in the request; ``run``: the store
#: refuses anything for this run.
Outcome = Literal["ok", "transient", "server", "item", "run"]

#: HTTP statuses worth retrying.
TRANSIENT_HTTP: Final = frozenset({408, 425, 429, 502, 503, 504})


class TransientHTTPError(Exception):
    """The tracking server answered with a status worth retrying (one of `TRANSIENT_HTTP`)."""


_TRANSIENT_CODES: Final = frozenset(
    {
        "TEMPORARILY_UNAVAILABLE",
        "REQUEST_LIMIT_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "DEADLINE_EXCEEDED",
        "ABORTED",
        "CANCELLED",
    }
)
_RUN_CODES: Final = frozenset(
    {
        "RESOURCE_DOES_NOT_EXIST",
        "NOT_FOUND",
        "ENDPOINT_NOT_FOUND",
        "INVALID_STATE",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "CUSTOMER_UNAUTHORIZED",
        "FEATURE_DISABLED",
    }
)

# Transient failures raised by libraries the store may use, looked up by module name.
_TRANSIENT_ELSEWHERE: Final = (
    ("requests.exceptions", ("ConnectionError", "Timeout", "RetryError", "ChunkedEncodingError")),
    ("sqlalchemy.exc", ("OperationalError",)),  # "database is locked" and the like
    ("sqlite3", ("OperationalError",)),
)


def _transient_exception_types() -> tuple[type[BaseException], ...]:
    """The exception types that mean "try again later", from modules already imported.

    An exception of a module nobody imported cannot have been raised, so nothing is
    imported here. This runs on a sender thread at the first failed request, typically
    mid-training: importing SQLAlchemy there (an HTTP store never loads it) took about
    0.13 s of the core that trains, and two threads importing the same package can
    deadlock (see `autolog.warmup`).
    """
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError, TransientHTTPError]
    for module_name, names in _TRANSIENT_ELSEWHERE:
        module = sys.modules.get(module_name)
        for name in names if module is not None else ():
            kind = getattr(module, name, None)
            if isinstance(kind, type) and issubclass(kind, BaseException):
                kinds.append(kind)
    return tuple(kinds)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(exc: BaseException) -> Outcome:
    """What a failed store call means for the data it carried."""
    transient = _transient_exception_types()  # a few dict lookups: failures are rare
    chain = _chain(exc)
    if any(isinstance(e, transient) for e in chain):
        return "transient"
    code = getattr(exc, "error_code", None)
    if code in _TRANSIENT_CODES:
        return "transient"
    if code in _RUN_CODES:
        return "run"
    message = str(exc)
    if "must be in the 'active' state" in message:
        return "run"  # the run was deleted; every item would be refused
    if code == "INTERNAL_ERROR" or code is None:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException):
            return "server"
        return "item"  # e.g. a value the client cannot encode
    return "item"
