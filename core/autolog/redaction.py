"""Keeps secrets out of the tracking store.

Every rule applies at any depth of the dicts, lists, tuples and sets a value is made of,
since those are logged as their ``str()``, secrets included. What is hidden becomes ``***``.

By name. A value whose key looks like a credential is hidden whole. The key is split into
words (``db_password``, ``apiKey``, ``AUTH_TOKEN``); it is a credential name when a word is
``password``, ``secret``, ``token``, ``auth``, ``credential``... or its plural
(``tokens``, ``passwords``, ``secrets``), when two words read ``api key``, ``private key``
or ``access key`` (``api_keys`` too), or when such a word is run together with another
(``dbpassword``, ``accesstoken``). ``pass`` counts, ``passes`` does not (``num_passes``).
``token`` is also the unit language models count text in, so it is not a secret where the
name counts or indexes tokens: one or two words after a count word (``max_tokens``,
``num_tokens``, ``max_new_tokens``, ``total_tokens``) or right before an index or measure
word (``token_ids``, ``pad_token_id``, ``token_type_ids``, ``tokens_per_second``,
``token_count``, ``tokens_seen``).
``tokenizer`` is not a credential word at all.

Inside text, whatever the key:

* URLs: the password of ``scheme://user:password@host`` (up to the last ``@`` before a
  blank, ``@`` and ``/`` included: ``u:p@ss@host``, ``u:pa/ss@host``), and the user too
  when it is a token (``https://ghp_...@github.com``): a known token prefix, or 20 or more
  letters, digits, ``_`` or ``-`` with both a letter and a digit. Plain users
  (``ssh://git@...``, ``postgresql://user@host``, ``bob.smith``) stay.
* Query strings: the value of a ``name=value`` parameter (after ``?``, ``&``, ``;``, ``#``,
  a blank or ``--``) whose name is a credential name or a signature (``sig``,
  ``X-Amz-Signature``, ``X-Goog-Signature``): signed URLs keep everything but the secret.
* Well-known token shapes, as secret scanners find them: GitHub (``ghp_``, ``gho_``,
  ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``), GitLab ``glpat-``, Hugging Face ``hf_``,
  OpenAI-style ``sk-`` (``sk-proj-``...), AWS access key ids (``AKIA``/``ASIA``), Google API
  keys (``AIza``), Slack ``xox?-``, JWTs, and the body of PEM private key blocks. Each
  needs its full length (and, where the prefix alone is weak, mixed case or a digit), so
  that ordinary words, run ids, git SHAs, UUIDs and hex or base64 digests stay as they are.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["REDACTED", "looks_secret", "redact_mapping", "redact_value"]

REDACTED = "***"

# Names ---------------------------------------------------------------------------------

# Matched against the words of a name (``db_password``, ``apiKey``, ``AUTH_TOKEN``), so that
# ``tokenizer`` is not mistaken for a secret.
_SECRET_SINGULARS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "auth",
    "authorization",
    "credential",
    "apikey",
    "privatekey",
    "passphrase",
)
# ``pass`` has no plural here: ``passes`` counts passes over the data.
_SECRET_WORDS = frozenset({*_SECRET_SINGULARS, *(word + "s" for word in _SECRET_SINGULARS), "pass"})
_SECRET_INSIDE = re.compile(r"password|passwd|secret|credential|apikey|privatekey|passphrase")
_KEY_QUALIFIERS = frozenset({"api", "private", "access"})
_TOKEN_WORDS = frozenset({"token", "tokens"})
# ``max_tokens``, ``max_new_tokens``: a count word one or two words before ``token``.
_COUNT_WORDS = frozenset({"max", "min", "num", "n", "nb", "number", "total", "count"})
# ``token_ids``, ``tokens_per_second``: the word right after ``token`` is what the name is.
_TOKEN_MEASURES = frozenset(
    {
        "id",
        "ids",
        "type",
        "types",
        "index",
        "indices",
        "idx",
        "count",
        "counts",
        "length",
        "len",
        "size",
        "limit",
        "per",
        "total",
        "seen",
    }
)
# The same counts written as one word (``maxtokens``, ``maxnewtokens``).
_RUN_TOGETHER_COUNT = re.compile(r"(?:max|min|num|nb|n|total)(?:new)?tokens?")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def looks_secret(key: str) -> bool:
    """Whether a parameter or config name suggests its value is a credential."""
    # A long key (a dict keyed by text) is not kept in the cache.
    return _looks_secret(key) if len(key) <= 250 else _looks_secret.__wrapped__(key)


# The same names come back on every fit call: a bounded cache makes a known name free.
@functools.lru_cache(maxsize=4096)
def _looks_secret(key: str) -> bool:
    words = [w.lower() for w in _WORD.findall(key)]
    for at, word in enumerate(words):
        if word in _SECRET_WORDS and not (word in _TOKEN_WORDS and _counts_tokens(words, at)):
            return True
    if any(
        first in _KEY_QUALIFIERS and second in ("key", "keys")
        for first, second in itertools.pairwise(words)
    ):
        return True
    # Words run together (``dbpassword``, ``clientsecret``, ``accesstoken``).
    joined = "".join(words)
    if _SECRET_INSIDE.search(joined):
        return True
    return (
        joined.endswith(("token", "tokens"))
        and words[-1] not in _TOKEN_WORDS  # a word of its own: decided above
        and not _RUN_TOGETHER_COUNT.fullmatch(joined)
    )


def _counts_tokens(words: list[str], at: int) -> bool:
    """Whether ``words[at]`` (``token``/``tokens``) is the unit of a count or an index."""
    following = words[at + 1] if at + 1 < len(words) else ""
    return following in _TOKEN_MEASURES or not _COUNT_WORDS.isdisjoint(words[max(at - 2, 0) : at])


def _secret_parameter(name: str) -> bool:
    """Whether a query-string parameter's value is a secret: a credential or a signature.

    Signatures count here only: ``signature`` as a param name is an MLflow model signature.
    """
    words = _WORD.findall(name)
    return looks_secret(name) or (bool(words) and words[-1].lower() in ("sig", "signature"))


# Text ----------------------------------------------------------------------------------

# Well-known token shapes. Each starts and ends at a non-alphanumeric character (``_`` and
# ``-`` may precede, ``my_hf_...``), and needs its real minimum length.
_SHAPES = re.compile(
    r"""
    (?<![A-Za-z0-9])
    (?:
        gh[pousr]_[A-Za-z0-9]{36,}                                # GitHub
      | github_pat_[A-Za-z0-9_]{50,}                              # GitHub fine-grained
      | glpat-[A-Za-z0-9_-]{20,}                                  # GitLab
      | hf_(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[a-z])[A-Za-z0-9]{34,}  # Hugging Face
      | sk-(?=[\w-]*[A-Z])(?=[\w-]*[a-z])(?=[\w-]*[0-9])[\w-]{20,}     # OpenAI, Anthropic
      | (?:AKIA|ASIA)[A-Z0-9]{16}                                 # AWS access key id
      | AIza[A-Za-z0-9_-]{35}                                     # Google API key
      | xox[abposr]-(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9-]{15,}       # Slack
      | eyJ[\w-]{15,}\.[\w-]*\.[\w-]*                             # JWT (header.payload.sig)
    )
    (?![A-Za-z0-9])
    """,
    re.VERBOSE | re.ASCII,
)
# The shortest of those shapes: shorter text is not scanned.
_SHORTEST_SHAPE: Final = 20
# A PEM private key's body; the BEGIN/END lines stay, to say what was there. A block cut
# short (a truncated value) is hidden to the end of the text.
_PEM_KEY = re.compile(
    r"(?P<begin>-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----)"
    r".*?"
    r"(?P<end>-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)",
    re.DOTALL,
)
_PEM_MASK = rf"\g<begin>{REDACTED}\g<end>"

# scheme://user:password@host  ->  scheme://user:***@host;  scheme://TOKEN@host -> ***@host
# The user may be empty (``redis://:pw@host``). The password runs greedily to the LAST
# ``@`` before a blank: unescaped ``@`` and ``/`` in passwords (``bob:p@ss@host``,
# ``u:pa/ss@host``) are common, and stopping at the first one would leave the rest of the
# password in clear; a ``@`` in the path (rare after credentials) then hides the host too.
# Text after ``host:`` that starts like a port (``host:8080/path/x@y``) is no password
# past the port: only an ``@`` before the first ``/`` makes it one, as before.
_URL_USERINFO = re.compile(
    r"""
    (?P<head>\b[a-zA-Z][\w+.-]*://)
    (?:
        (?P<user>[^/\s:\[\]]*):(?:(?!\d+[/?\#])\S*|[^/\s]*)@
      | (?P<bare>[^/\s:@\[\]]+)@
    )
    """,
    re.VERBOSE,
)
# A user that is a token: a known prefix (any length, here the place says enough), or 20
# or more letters, digits, ``_`` and ``-`` with a letter and a digit (an access token, a
# 40-hex OAuth token), where user names are short or dotted.
_TOKEN_USER = re.compile(
    r"(?:gh[pousr]_|github_pat_|glpat-|hf_|sk-|xox[abposr]-)[\w-]+"
    r"|(?=[\w-]*[0-9])(?=[\w-]*[A-Za-z])[\w-]{20,}",
    re.ASCII,
)
# name=value in a query string, a fragment or a command line. The value may not start
# with ``=``, so that base64 padding (``...xyz==``) is not read as a parameter.
_PARAMETER = re.compile(
    r"(?<![^\s?&;#])(?:--)?(?P<name>[A-Za-z][\w.-]*)=(?P<value>[^&;#\s=][^&;#\s]*)"
)
# Every secret parameter name holds one of these (lowercased); text without any is not
# parsed: most ``=`` in logged text are ordinary (``page=2``), and this check is 10 times
# cheaper than parsing (and than the same pattern with re.IGNORECASE).
_PARAMETER_HINT = re.compile(r"sig|pass|pwd|secret|token|auth|credential|key")


def _mask_userinfo(match: re.Match[str]) -> str:
    bare = match["bare"]
    if bare is not None:
        user = REDACTED if _TOKEN_USER.fullmatch(bare) else bare
        return f"{match['head']}{user}@"
    user = match["user"]
    if _TOKEN_USER.fullmatch(user):
        user = REDACTED
    return f"{match['head']}{user}:{REDACTED}@"


def _mask_parameter(match: re.Match[str]) -> str:
    if not _secret_parameter(match["name"]):
        return match[0]
    return match[0][: match.start("value") - match.start()] + REDACTED


def _redact_text(text: str) -> str:
    """``text`` with the secrets inside it hidden; ``text`` itself if it holds none."""
    redacted = text
    if "PRIVATE KEY" in redacted:
        redacted = _PEM_KEY.sub(_PEM_MASK, redacted)
    if len(redacted) >= _SHORTEST_SHAPE:
        redacted = _SHAPES.sub(REDACTED, redacted)
    if "@" in redacted:
        redacted = _URL_USERINFO.sub(_mask_userinfo, redacted)
    if "=" in redacted and _PARAMETER_HINT.search(redacted.lower()):
        redacted = _PARAMETER.sub(_mask_parameter, redacted)
    # The same object when nothing was hidden, so that containers holding it are kept.
    return text if redacted == text else redacted


# Values --------------------------------------------------------------------------------

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
        if isinstance(value, str):
            return _redact_text(value)
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
            return _redact_text(value)
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
