"""MLflow's rules for one metric, param or tag, checked item by item before sending.

The rules mirror ``mlflow.utils.validation`` (key pattern, 250-character keys, no path
tricks; metric values are real numbers; 6000-character params and 8000-character tags) so
that an item that passes here is one the store accepts, and one bad item never reaches a
request where it would sink the others. Functions return the clean value or an
`Invalid` carrying the reason; none of them raises on any input.
"""

from __future__ import annotations

import math
import numbers
import operator
import posixpath
import re
import sys
from typing import Final

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_RUN_NAME_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "Invalid",
    "check_key",
    "eager_metric_value",
    "metric_step",
    "metric_timestamp",
    "metric_value",
    "text_value",
]

MAX_KEY_LENGTH: Final = 250
MAX_PARAM_VALUE_LENGTH: Final = 6000
MAX_TAG_VALUE_LENGTH: Final = 8000
# MLflow checks no run name length, but its SQL schema declares ``runs.name VARCHAR(250)``:
# PostgreSQL and MySQL refuse a longer name, and with it the run and everything logged to it.
MAX_RUN_NAME_LENGTH: Final = 250
# Steps and timestamps are 64-bit integers in every store: a larger Python int would make
# the whole request fail, not just its own item.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# MLflow forbids ":" in names on Windows only; match its check exactly (including `$`
# accepting one trailing newline) so we neither drop what the store takes nor pass what
# it refuses.
_KEY_PATTERN: Final = re.compile(r"^[/\w.\- ]*$" if sys.platform == "win32" else r"^[/\w.\- :]*$")


class Invalid:
    """Why an item cannot be sent as given."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Invalid({self.reason!r})"


def check_key(key: object) -> str | Invalid:
    """``key`` as a plain ``str`` if MLflow accepts it as a metric/param/tag name."""
    if not isinstance(key, str):
        return Invalid(f"names must be strings, got {type(key).__name__}")
    key = str(key)  # a str subclass (numpy.str_) would not serialize as plain JSON
    if len(key) > MAX_KEY_LENGTH:
        return Invalid(f"names may have at most {MAX_KEY_LENGTH} characters, got {len(key)}")
    if not _KEY_PATTERN.match(key):
        return Invalid(
            "names may only contain alphanumerics, underscores, dashes, periods, spaces, "
            "slashes" + ("" if sys.platform == "win32" else " and colons")
        )
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        return Invalid(f"names must be normalized relative paths (this one means {norm!r})")
    return key


def _scalar_shape_problem(value: object) -> str | None:
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        ndim = len(shape)
    except TypeError:
        return None
    if ndim != 0:
        return f"metric values must be scalars, got shape {tuple(shape)!r}"
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind in ("U", "S", "O", "a", "V", "M", "m"):
        return f"metric values must be numbers, got a 0-d array of dtype {value.dtype}"  # type: ignore[attr-defined]
    return None


def metric_value(value: object) -> float | Invalid:
    """``value`` as a float (NaN and infinities kept: the store records them as MLflow does)."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if kind is int or kind is bool:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            return Invalid(f"integer {value} does not fit a 64-bit float")
    if value is None:
        return Invalid("metric values must be numbers, got None")
    if isinstance(value, (str, bytes, bytearray)):
        return Invalid(f"metric values must be numbers, got {type(value).__name__}")
    problem = _scalar_shape_problem(value)
    if problem is not None:
        return Invalid(problem)
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        return Invalid("metric values must be real numbers, got a complex number")
    try:
        result = float(value)  # type: ignore[arg-type]
    except Exception as exc:
        return Invalid(f"metric values must be numbers, got {type(value).__name__} ({exc})")
    if type(result) is not float:
        result = float.__float__(result)
    return result


def eager_metric_value(value: object) -> object:
    """On the caller's thread: turn a mutable or device value into a float now.

    A 0-d array or a framework variable read later could show a later value, so anything
    that is not an immutable Python number is converted at enqueue time. Failures are left
    for the flusher to report (this never raises).
    """
    try:
        result = metric_value(value)
    except Exception:
        return value
    return value if isinstance(result, Invalid) else result


def _integer(value: object, what: str) -> int | Invalid:
    if type(value) is int:
        number: int = value
    elif isinstance(value, (str, bytes, bytearray)):
        return Invalid(f"{what} must be an integer, got {type(value).__name__}")
    else:
        try:
            number = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            try:
                as_float = float(value)  # type: ignore[arg-type]
            except Exception:
                return Invalid(f"{what} must be an integer, got {type(value).__name__}")
            if not math.isfinite(as_float) or not as_float.is_integer():
                return Invalid(f"{what} must be an integer, got {as_float!r}")
            number = int(as_float)
        except Exception as exc:
            return Invalid(f"{what} must be an integer ({exc})")
    if not INT64_MIN <= number <= INT64_MAX:
        return Invalid(f"{what} must fit a 64-bit integer, got {number}")
    return int(number)


def metric_step(step: object) -> int | Invalid:
    if step is None:
        return 0
    return _integer(step, "step")


def metric_timestamp(timestamp: object) -> int | Invalid:
    result = _integer(timestamp, "timestamp (ms)")
    if isinstance(result, int) and result < 0:
        return Invalid(f"timestamp (ms) must be >= 0, got {result}")
    return result


def text_value(value: object, limit: int) -> tuple[str, str | None]:
    """``(text, problem)``: ``value`` as MLflow stores it, truncated/repaired if needed.

    ``problem`` says what was changed (``None`` when nothing was). Values are expected to
    be strings already (the logger calls ``str()`` on the caller's thread).
    """
    text = value if type(value) is str else _to_text(value)
    problem = None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates cannot be stored or sent as UTF-8; keep what can be.
            text = text.encode("utf-8", "replace").decode("utf-8")
            problem = "contained characters that are not valid Unicode (replaced with '?')"
    if len(text) > limit:
        problem = f"value of {len(text)} characters truncated to MLflow's limit of {limit}"
        text = text[:limit]
    return text, problem


def _to_text(value: object) -> str:
    try:
        return str(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: {exc!r}>"
