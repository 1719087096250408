"""Redaction (guarantee 6) of nested values: dicts, lists, tuples and sets at any depth.

Values are stored as their ``str()``, so a credential inside a captured ``config`` dict or a
list of URLs reaches the store unless redaction looks inside. Checked on
``autolog.redaction`` directly (examples and properties) and end to end, through a
third-party plugin's captured arguments and hooks into a real SQLite MLflow store.
"""

from __future__ import annotations

import time
from collections import OrderedDict, namedtuple
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from autolog.redaction import MAX_DEPTH, REDACTED, looks_secret, redact_mapping, redact_value
from tests.reliability import _fakedist

SECRET = "hunter2"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"password": SECRET}, {"password": REDACTED}),
        ({"uri": f"https://alice:{SECRET}@host/api"}, {"uri": "https://alice:***@host/api"}),
        ([f"https://alice:{SECRET}@host/api"], ["https://alice:***@host/api"]),
        ((1, {"db": {"api_key": SECRET}}), (1, {"db": {"api_key": REDACTED}})),
        ({"auth": {"user": "bob", "token": SECRET}}, {"auth": REDACTED}),
        (
            [[[{"AWS_SECRET_ACCESS_KEY": SECRET, "region": "eu"}]]],
            [[[{"AWS_SECRET_ACCESS_KEY": REDACTED, "region": "eu"}]]],
        ),
        # password-only userinfo (the usual Redis form)
        (f"redis://:{SECRET}@localhost:6379/0", "redis://:***@localhost:6379/0"),
        # an unescaped '@' in the password: the userinfo ends at the last '@'
        ("postgresql://bob:p@ss@db.example.com/x", "postgresql://bob:***@db.example.com/x"),
        ("mysql://bob:a@b@c:d@db:3306/x", "mysql://bob:***@db:3306/x"),
        ("https://alice@corp.com:pw@host/", "https://alice@corp.com:***@host/"),
        (
            "from https://a:x@h1/ and redis://:y@h2/0, done",
            "from https://a:***@h1/ and redis://:***@h2/0, done",
        ),
        # a URL in a dict key
        ({f"https://a:{SECRET}@h/": 1}, {"https://a:***@h/": 1}),
        ({f"https://a:{SECRET}@h/"}, {"https://a:***@h/"}),
        (frozenset({f"https://a:{SECRET}@h/"}), frozenset({"https://a:***@h/"})),
    ],
)
def test_nested_credentials_are_redacted(value: Any, expected: Any) -> None:
    redacted = redact_value("config", value)
    assert redacted == expected
    assert type(redacted) is type(expected)
    assert SECRET not in str(redacted)


@pytest.mark.parametrize(
    "value",
    [
        {"units": 4, "activation": "relu", "layers": [1, 2, 3]},
        [0.1, 0.2, 3],
        (1, "two", None, True),
        "https://tracking.example.com:5000/api?x=1",
        "ssh://git@github.com/org/repo.git",
        "mail a@b.com or c@d.org about it",
        {"emails": ["a@b.com"], "url": "http://host:8080/path/x@y"},
        OrderedDict(a=1, b=[2]),
        {1: "a", (2, 3): "b"},
        {"tokenizer": "bpe", "max_tokens": 512},
        set(),
    ],
)
def test_ordinary_values_are_left_as_they_are(value: Any) -> None:
    assert redact_value("config", value) is value


def test_a_named_tuple_keeps_its_type() -> None:
    Endpoint = namedtuple("Endpoint", "name url")
    redacted = redact_value("endpoint", Endpoint("main", f"https://a:{SECRET}@h/"))
    assert type(redacted) is Endpoint
    assert str(redacted) == "Endpoint(name='main', url='https://a:***@h/')"


def test_a_credential_named_key_is_redacted_whatever_its_value() -> None:
    assert redact_value("password", {"nested": [1, 2]}) == REDACTED
    assert redact_mapping({"config": {"db_password": None}}) == {
        "config": {"db_password": REDACTED}
    }


def test_cycles_and_very_deep_values_are_cut_not_crashed_on() -> None:
    cyclic: list[Any] = [f"https://a:{SECRET}@h/"]
    cyclic.append(cyclic)
    assert redact_value("c", cyclic) == ["https://a:***@h/", REDACTED]

    loop: dict[str, Any] = {"name": "x"}
    loop["self"] = loop
    assert redact_value("c", loop) == {"name": "x", "self": REDACTED}

    deep: Any = {"password": SECRET}
    for _ in range(100_000):
        deep = [deep]
    redacted = redact_value("c", deep)
    depth = 0
    while isinstance(redacted, list):
        redacted, depth = redacted[0], depth + 1
    assert redacted == REDACTED and depth == MAX_DEPTH


def test_huge_and_shared_values_are_bounded() -> None:
    # 2**60 leaves to print: the walk stops after a bounded number of items.
    shared: Any = [f"https://a:{SECRET}@h/"]
    for _ in range(60):
        shared = [shared, shared]
    started = time.perf_counter()
    redacted = redact_value("c", shared)
    assert time.perf_counter() - started < 5
    assert SECRET not in repr(redacted)[:100_000]

    # A long list keeps every character MLflow would store (6000 for a param).
    numbers = [*range(20_000), f"https://a:{SECRET}@h/"]
    redacted = redact_value("c", numbers)
    assert str(redacted)[:8000] == str(numbers)[:8000]
    assert SECRET not in str(redacted)


class _Broken(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("broken")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("broken")

    def __len__(self) -> int:
        return 1


def test_a_value_that_cannot_be_looked_through_is_redacted_not_raised() -> None:
    assert redact_value("c", [_Broken()]) == REDACTED


# Properties -----------------------------------------------------------------------------

_names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
    lambda name: not looks_secret(name)
)
# Plain text, e-mail addresses and URLs without credentials: nothing to redact.
_plain_text = st.one_of(
    st.text(max_size=30).filter(lambda text: "://" not in text),
    st.emails(),
    st.builds("https://{}.example.com:8443/{}".format, _names, _names),
)
_ordinary = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _plain_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_names, inner, max_size=4),
    ),
    max_leaves=20,
)
_credential_names = st.sampled_from(
    ["password", "db_password", "apiKey", "AUTH_TOKEN", "client_secret", "private_key"]
)
# Passwords as people type them into URLs: '@' and ':' included, no '/' or blank.
_passwords = st.text("abcXYZ019@:!$%&*+-.=?#_~", min_size=1, max_size=12).map(
    lambda text: f"S3CR3T{text}"
)
_url_secrets = st.builds(
    lambda scheme, user, password: (f"{scheme}://{user}:{password}@db.example.com/x", password),
    st.sampled_from(["https", "postgresql+psycopg2", "redis", "s3"]),
    st.sampled_from(["", "alice", "bob.smith"]),
    _passwords,
)
_named_secrets = st.builds(
    lambda name, password: ({name: password}, password), _credential_names, _passwords
)


@st.composite
def _with_a_secret(draw: st.DrawFn) -> tuple[Any, str]:
    """An ordinary structure with a secret put somewhere inside it, and the secret."""
    value, secret = draw(st.one_of(_url_secrets, _named_secrets))
    for _ in range(draw(st.integers(0, 6))):
        siblings = draw(st.lists(_ordinary, max_size=3))
        at = draw(st.integers(0, len(siblings)))
        kind = draw(st.sampled_from(["list", "tuple", "dict"]))
        items = [*siblings[:at], value, *siblings[at:]]
        if kind == "dict":
            keys = draw(st.lists(_names, min_size=len(items), max_size=len(items), unique=True))
            value = dict(zip(keys, items, strict=True))
        else:
            value = items if kind == "list" else tuple(items)
    return value, secret


@given(_ordinary)
def test_property_ordinary_values_come_back_unchanged(value: Any) -> None:
    assert redact_value("config", value) is value


@given(_with_a_secret())
def test_property_a_secret_at_any_depth_is_never_in_the_stored_text(case: Any) -> None:
    value, secret = case
    redacted = redact_value("config", value)
    assert secret not in str(redacted)
    assert "S3CR3T" not in str(redacted)
    assert redact_value("config", redacted) == redacted  # redacting twice changes nothing


@given(st.sampled_from(["", "alice"]), _passwords, _plain_text)
def test_property_url_password_is_masked_and_the_rest_kept(
    user: str, password: str, text: str
) -> None:
    value = f"{text} postgresql://{user}:{password}@db.example.com:5432/x {text}"
    expected = f"{text} postgresql://{user}:***@db.example.com:5432/x {text}"
    assert redact_value("note", value) == expected


# End to end -----------------------------------------------------------------------------

FRAMEWORK = {
    "nestfw/__init__.py": '''
        def train(epochs=1, config=None, endpoints=None, broker_url=None, db_uri=None):
            """Pretend to train."""
            return epochs
    ''',
}
PLUGIN = {
    "autolog_nest/__init__.py": """
        from autolog import Patch, Plugin


        def _after(call, result):
            # What a plugin reads from the framework and logs itself, nested as it comes.
            call.sink.log_params({"resolved": {"sources": [call.get("config")]}})
            call.sink.log_param("broker", {"urls": (call.get("broker_url"),)})
            call.sink.set_tags({"endpoints": call.get("endpoints")})
            call.sink.set_tag("db", [call.get("db_uri")])


        class NestPlugin(Plugin):
            name = "nest"
            requires = ("nestfw>=1",)
            patches = (
                Patch(
                    "nestfw:train",
                    capture=("epochs", "config", "endpoints", "broker_url", "db_uri"),
                    after=_after,
                    owns_run=True,
                ),
            )
    """,
}


@pytest.fixture
def nestfw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    root = tmp_path / "site"
    _fakedist.install(root, "nestfw", "1.0", modules=FRAMEWORK)
    _fakedist.install(
        root,
        "autolog-nest",
        entry_points={"nest": "autolog_nest:NestPlugin"},
        modules=PLUGIN,
    )
    monkeypatch.syspath_prepend(str(root))
    _fakedist.forget("nestfw", "autolog_nest")
    import autolog

    autolog.autolog(frameworks=["nest"])
    import nestfw

    yield nestfw
    autolog.disable()
    _fakedist.forget("nestfw", "autolog_nest")


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    mlflow.set_tracking_uri(None)


def test_nested_secrets_never_reach_a_real_store(
    sqlite_store: MlflowClient, nestfw: Any, tmp_path: Path
) -> None:
    nestfw.train(
        epochs=2,
        config={"host": "db", "password": "pw-in-config", "replicas": [{"api_key": "pw-deep"}]},
        endpoints=["https://alice:pw-in-list@host/api", "https://public.example.com/api"],
        broker_url="redis://:pw-only@localhost:6379/0",
        db_uri="postgresql://bob:pw@with-at@db.example.com/x",
    )
    (run,) = sqlite_store.search_runs(["0"])
    assert run.info.status == "FINISHED"
    params, tags = run.data.params, run.data.tags
    config = "{'host': 'db', 'password': '***', 'replicas': [{'api_key': '***'}]}"
    assert params["config"] == config
    assert params["endpoints"] == "['https://alice:***@host/api', 'https://public.example.com/api']"
    assert params["broker_url"] == "redis://:***@localhost:6379/0"
    assert params["db_uri"] == "postgresql://bob:***@db.example.com/x"
    assert params["epochs"] == "2"
    assert params["resolved"] == "{'sources': [" + config + "]}"
    assert params["broker"] == "{'urls': ('redis://:***@localhost:6379/0',)}"
    assert tags["endpoints"] == params["endpoints"]
    assert tags["db"] == "['postgresql://bob:***@db.example.com/x']"

    stored = [*params.values(), *tags.values()]
    secrets = ("pw-in-config", "pw-deep", "pw-in-list", "pw-only", "with-at", "pw@")
    assert [(s, v) for s in secrets for v in stored if s in v] == []
    spooled = [p for p in (tmp_path / "spool").rglob("*") if p.is_file()]
    assert not [p for p in spooled for s in secrets if s in p.read_text(errors="replace")]
