"""Keeps secrets out of the tracking store.

Values whose key looks like a credential are replaced by ``***``; user:password pairs
inside URLs are masked wherever they appear in a logged value. Both rules apply at any
depth of the dicts, lists, tuples and sets a value is made of, since those are logged as
their ``str()``, secrets included.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["REDACTED", "looks_secret", "redact_mapping", "redact_value"]

REDACTED = "***"

# Matched against the words of a name (``db_password``, ``apiKey``, ``AUTH_TOKEN``), so that
# ``tokenizer`` or ``max_tokens`` are not mistaken for secrets.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "token",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "apikey",
        "privatekey",
        "passphrase",
    }
)
_SECRET_INSIDE = re.compile(r"password|passwd|secret|credential|apikey|privatekey|passphrase")
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# scheme://user:password@host  ->  scheme://user:***@host
# The user may be empty (``redis://:pw@host``). The password runs greedily to the LAST
# ``@`` before the path or a blank: an unescaped ``@`` in a password (``bob:p@ss@host``) is
# common, and stopping at the first one would leave the rest of the password in clear.
_URL_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^/\s:]*):[^/\s]*@")
_URL_MASK = rf"\g<head>:{REDACTED}@"

# Containers deeper than this are not walked: their content is replaced by ``***``, so
# that a very deep (or self-referencing) value can neither exhaust the stack nor leak by
# being too deep to look at.
MAX_DEPTH: Final = 32
# Items (containers and leaves) looked at per value. The walk visits them in the order
# ``str()`` prints them, each printing as at least one character, so whatever comes after
# this many lies beyond MLflow's 6000/8000-character value limits and is replaced by a
# single ``***``. Bounds the work on huge lists and on shared sub-lists (``[x, x]`` nested
# 40 deep is 2**40 items to print).
MAX_ITEMS: Final = 10_000
# Leaves that can hold no secret; checked first, as most items of a logged list are numbers.
_PLAIN = (int, float, complex, bool, type(None), bytes)


def looks_secret(key: str) -> bool:
    """Whether a parameter or config name suggests its value is a credential."""
    words = [w.lower() for w in _WORD.findall(key)]
    if any(w in _SECRET_WORDS for w in words):
        return True
    # Words run together (``dbpassword``, ``clientsecret``, ``accesstoken``).
    joined = "".join(words)
    if _SECRET_INSIDE.search(joined) or joined.endswith("token"):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def redact_value(key: str, value: Any) -> Any:
    """``value`` as it may be stored under ``key``.

    A value with nothing to hide is returned as is (the same object), so its ``str()``
    is unchanged; otherwise a redacted copy: a dict for any mapping, a list, tuple (or
    the same named tuple), set or frozenset for those. Never raises: a value that cannot
    be looked through is replaced by ``***`` (autologging must not break training, and
    what cannot be checked must not reach the store).
    """
    if looks_secret(key):
        return REDACTED
    if isinstance(value, _PLAIN):  # most params: no walk to set up
        return value
    try:
        return _Walk().redact(value, 0)
    except Exception:
        return REDACTED


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with each value redacted under its key (the keys are names, kept as is)."""
    return {key: redact_value(key, value) for key, value in values.items()}


class _Walk:
    """One value's walk: how many items it may still visit, the containers it is inside."""

    __slots__ = ("left", "path")

    def __init__(self) -> None:
        self.left = MAX_ITEMS
        self.path: set[int] = set()

    def redact(self, value: Any, depth: int) -> Any:
        """``value`` redacted, found ``depth`` containers down."""
        self.left -= 1
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, str):
            return _URL_USERINFO.sub(_URL_MASK, value) if "@" in value else value
        if not isinstance(value, (Mapping, list, tuple, set, frozenset)):
            # Other objects are stored as their str(); walking their attributes would be
            # guessing, and would run arbitrary code.
            return value
        if depth >= MAX_DEPTH or id(value) in self.path:
            return REDACTED
        self.path.add(id(value))
        try:
            if isinstance(value, Mapping):
                return self._mapping(value, depth + 1)
            return self._collection(value, depth + 1)
        finally:
            self.path.discard(id(value))

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> Any:
        pairs = list(value.items())
        redacted: dict[Any, Any] = {}
        changed = False
        for key, item in pairs:
            if self.left <= 0:
                redacted[REDACTED] = REDACTED
                changed = True
                break
            # A key is a string like any other (``{"https://u:pw@host": ...}``).
            new_key = self.redact(key, depth)
            if isinstance(key, str) and looks_secret(key):
                new_item: Any = REDACTED
            else:
                new_item = self.redact(item, depth)
            changed = changed or new_key is not key or new_item is not item
            redacted[new_key] = new_item
        return redacted if changed else value

    def _collection(
        self, value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], depth: int
    ) -> Any:
        items = list(value)
        redacted: list[Any] = []
        for item in items:
            if self.left <= 0:
                redacted.append(REDACTED)
                break
            redacted.append(self.redact(item, depth))
        if len(redacted) == len(items) and all(
            new is old for new, old in zip(redacted, items, strict=True)
        ):
            return value
        if isinstance(value, list):
            return redacted
        if isinstance(value, tuple):
            # A named tuple keeps its type, so that its str() still names its fields.
            return type(value)(*redacted) if hasattr(value, "_fields") else tuple(redacted)
        return frozenset(redacted) if isinstance(value, frozenset) else set(redacted)
