"""Keeps secrets out of the tracking store.

Values whose key looks like a credential are replaced by ``***``; user:password pairs
inside URLs are masked wherever they appear in a logged value.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

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
_URL_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^/\s:@]+):[^/\s@]+@")


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
    if looks_secret(key):
        return REDACTED
    if isinstance(value, str) and "@" in value:
        return _URL_USERINFO.sub(rf"\g<head>:{REDACTED}@", value)
    return value


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: redact_value(key, value) for key, value in values.items()}
