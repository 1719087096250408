"""Redaction (guarantee 6) of nested values: dicts, lists, tuples and sets at any depth.

Values are stored as their ``str()``, so a credential inside a captured ``config`` dict or a
list of URLs reaches the store unless redaction looks inside. Inside text, URL credentials,
secret query-string parameters and well-known token shapes are hidden whatever the key,
while values that merely look random (run ids, hashes, UUIDs) are kept. Checked on
``autolog.redaction`` directly (examples and properties) and end to end, through a
third-party plugin's captured arguments and hooks into a real SQLite MLflow store.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
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


# Names: plurals are secret, counts of language-model tokens are not -----------------


@pytest.mark.parametrize(
    "name",
    [
        # singular words, as before
        "token",
        "AUTH_TOKEN",
        "githubToken",
        "api_token",
        "use_auth_token",
        "accesstoken",
        # plurals
        "tokens",
        "api_keys",
        "passwords",
        "secrets",
        "credentials",
        "access_keys",
        "private_keys",
        "auth_tokens",
        "githubTokens",
        "HF_TOKENS",
        "accesstokens",
        "db_passwds",
        # a count word too far from 'token' to be its count
        "min_ttl_refresh_token",
    ],
)
def test_plural_and_singular_credential_names_are_secret(name: str) -> None:
    assert looks_secret(name)
    assert redact_mapping({name: ["ghp_abc123"]}) == {name: REDACTED}


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens",
        "num_tokens",
        "n_tokens",
        "max_new_tokens",
        "min_new_tokens",
        "max_num_batched_tokens",
        "tokens_seen",
        "total_tokens",
        "maxTokens",
        "maxtokens",
        "maxnewtokens",
        "tokenizer",
        "tokenizer_name",
        "token_ids",
        "pad_token_id",
        "eos_token_id",
        "token_type_ids",
        "tokens_per_second",
        "token_count",
        "max_token_length",
        "num_passes",
        "keys",
        "signature",
    ],
)
def test_names_that_count_or_index_tokens_are_not_secret(name: str) -> None:
    assert not looks_secret(name)
    assert redact_mapping({name: 512}) == {name: 512}


def test_the_issue_s_plural_example() -> None:
    config = {"tokens": ["ghp_abc123"], "max_tokens": 512, "tokenizer": "bpe"}
    assert redact_value("config", config) == {
        "tokens": REDACTED,
        "max_tokens": 512,
        "tokenizer": "bpe",
    }


# Token shapes, built in pieces so that this file holds no literal a scanner would flag.


def _token(prefix: str, body: str) -> str:
    return prefix + body


GITHUB = _token("ghp_", "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5")
GITHUB_APP = _token("ghs_", "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8N")
GITHUB_FINE = _token("github_pat_", "11ABCDEFG0abcdefghijkl_" + "mNoPqRsTuVwXyZ0123456789" * 2)
GITLAB = _token("glpat-", "xY3zW9vU7tS5rQ1pO8nM")
HUGGING_FACE = _token("hf_", "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh")
OPENAI = _token("sk-", "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef6")
OPENAI_PROJECT = _token("sk-proj-", "Ab1_Cd2-Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3")
ANTHROPIC = _token("sk-ant-api03-", "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3-AA")
AWS_KEY_ID = _token("AKIA", "IOSFODNN7EXAMPLE")
AWS_SESSION_KEY_ID = _token("ASIA", "Y34FZKBOKMUTVV7A")
GOOGLE = _token("AIza", "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")
SLACK = _token("xox" + "b-", "1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx")
JWT = _token(
    "eyJ",
    "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
)
PEM_BODY = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naZ1x\n"
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + PEM_BODY + "-----END RSA PRIVATE KEY-----"
SHAPED = {
    "github": GITHUB,
    "github app": GITHUB_APP,
    "github fine-grained": GITHUB_FINE,
    "gitlab": GITLAB,
    "hugging face": HUGGING_FACE,
    "openai": OPENAI,
    "openai project": OPENAI_PROJECT,
    "anthropic": ANTHROPIC,
    "aws key id": AWS_KEY_ID,
    "aws session key id": AWS_SESSION_KEY_ID,
    "google api key": GOOGLE,
    "slack": SLACK,
    "jwt": JWT,
}


@pytest.mark.parametrize("token", SHAPED.values(), ids=SHAPED.keys())
def test_well_known_token_shapes_are_hidden_whatever_the_key(token: str) -> None:
    assert redact_value("model", token) == REDACTED
    note = f"pulled with {token}, then trained"
    assert redact_value("note", note) == "pulled with ***, then trained"
    assert redact_mapping({"hub": {"revision": "main", "auth": 1, "x": [token]}}) == {
        "hub": {"revision": "main", "auth": REDACTED, "x": [REDACTED]}
    }
    assert redact_value("header", f"Authorization: Bearer {token}") == ("Authorization: Bearer ***")


def test_a_pem_private_key_body_is_hidden_and_its_kind_kept() -> None:
    assert redact_value("deploy", {"ssh": PEM}) == {
        "ssh": "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----"
    }
    for kind in ("", "EC ", "OPENSSH ", "ENCRYPTED "):
        block = f"-----BEGIN {kind}PRIVATE KEY-----\n{PEM_BODY}-----END {kind}PRIVATE KEY-----"
        assert PEM_BODY not in redact_value("k", f"key:\n{block}\nend")
    # cut short (a truncated value): hidden to the end
    truncated = "-----BEGIN PRIVATE KEY-----\n" + PEM_BODY[:40]
    assert redact_value("k", truncated) == "-----BEGIN PRIVATE KEY-----***"
    # a public key or a certificate is no secret
    public = "-----BEGIN PUBLIC KEY-----\n" + PEM_BODY + "-----END PUBLIC KEY-----"
    assert redact_value("k", public) is public


@pytest.mark.parametrize(
    "value",
    [
        "ghp_",
        "ghp_short123",  # too short for a token (unless it is a URL's user)
        "github_pat_",
        "hf_hub_download",
        "hf_" + "transformersmodelcheckpointnamexyz",  # one case only: a name
        "sk-learn",
        "sk-" + "Learn-Based-Classifier-Pipeline",  # no digit
        "AKIA",
        "AKIAIOSFODNN7EXAMPL",  # 19 characters
        "XAKIAIOSFODNN7EXAMPLE",  # inside a longer word
        "xoxo-hugs-and-kisses-from-paris",  # no digit
        "eyJ",
        "eyJhbGciOiJIUzI1NiJ9",  # a base64 JSON, not three segments
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "sparse_categorical_crossentropy",
        "/data/datasets/mnist/train-00000-of-00001.parquet",
    ],
)
def test_ordinary_words_near_token_shapes_are_kept(value: str) -> None:
    assert redact_value("config", value) is value


def _random_looking_values() -> list[str]:
    digest = hashlib.sha256(b"dataset").digest()
    run_id = uuid.uuid4().hex
    return [
        run_id,  # an MLflow run id
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904",  # a git SHA
        str(uuid.uuid4()),
        digest.hex(),
        digest.hex().upper(),
        hashlib.md5(b"x").hexdigest(),  # a checksum, as datasets have
        base64.b64encode(digest).decode(),
        base64.urlsafe_b64encode(digest).decode(),
        base64.b64encode(hashlib.sha512(b"dataset").digest()).decode(),
        "sha256:" + digest.hex(),
        "sha256-" + base64.b64encode(digest).decode(),
        f"runs:/{run_id}/model",
        "models:/classifier@champion",
        f"mlflow-artifacts:/0/{run_id}/artifacts/model",
        f"s3://bucket/experiments/{run_id}/data.parquet?versionId=3HL4kqtJlcpXroDTDmJ",
        f"dataset digest={digest.hex()[:8]} rows=1000",
    ]


@pytest.mark.parametrize("value", _random_looking_values())
def test_values_that_merely_look_random_are_kept(value: str) -> None:
    assert redact_value("digest", value) is value
    assert redact_value("config", {"ids": [value]})["ids"][0] is value


# URLs: a token as the user, a '/' in the password --------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://ghp_SECRET123@github.com/org/repo", "https://***@github.com/org/repo"),
        (f"https://{GITHUB}@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
        ("https://hf_abc@huggingface.co/datasets/x", "https://***@huggingface.co/datasets/x"),
        ("https://glpat-abc@gitlab.com/g/p.git", "https://***@gitlab.com/g/p.git"),
        # an old 40-hex OAuth token, an Azure DevOps token: long, letters and digits
        (
            "https://0123456789abcdef0123456789abcdef01234567@github.com/o/r",
            "https://***@github.com/o/r",
        ),
        ("https://u7x2kd9qbf3mz8wla0pc4vnr6@dev.azure.com/org", "https://***@dev.azure.com/org"),
        # the token as the user, a fixed word as the password: both hidden
        ("https://ghp_x1:x-oauth-basic@github.com/o/r", "https://***:***@github.com/o/r"),
        # a '/' in the password is part of it
        ("postgresql://u:pa/ss@host/db", "postgresql://u:***@host/db"),
        ("mysql://bob:a/b/c@db:3306/x", "mysql://bob:***@db:3306/x"),
        ("postgresql://u:p@ss/w@rd@host/db", "postgresql://u:***@host/db"),
        (
            "see postgresql://u:pa/ss@host/db and https://a:b/c@h/",
            "see postgresql://u:***@host/db and https://a:***@h/",
        ),
    ],
)
def test_url_credentials_are_hidden(value: str, expected: str) -> None:
    assert redact_value("uri", value) == expected
    assert redact_value("config", [{"uri": value}]) == [{"uri": expected}]


@pytest.mark.parametrize(
    "value",
    [
        "ssh://git@github.com/org/repo.git",
        "postgresql://user@host/db",
        "postgresql://postgres@localhost:5432/mlflow",
        "https://bob.smith@corp.example.com/repo",
        "ftp://anonymous@ftp.example.com/pub",
        "https://x-access-token@github.com/o/r",
        "http://host:8080/path/x@y",
        "http://[::1]:8080/x@y",
    ],
)
def test_plain_url_users_are_kept(value: str) -> None:
    assert redact_value("uri", value) is value


# Signed URLs and query strings ---------------------------------------------------------

S3_PRESIGNED = (
    "https://bucket.s3.amazonaws.com/data.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential={cred}%2F20240101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F%2F%2F%2FSESSION"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sv=2020&sig=SECRETSIG", "sv=2020&sig=***"),
        (
            "https://acct.blob.core.windows.net/c/b.parquet?sv=2020-08-04&ss=b&srt=sco"
            "&sp=rl&se=2030-01-01T00:00:00Z&spr=https&sig=Abc%2Bdef%3D",
            "https://acct.blob.core.windows.net/c/b.parquet?sv=2020-08-04&ss=b&srt=sco"
            "&sp=rl&se=2030-01-01T00:00:00Z&spr=https&sig=***",
        ),
        (
            S3_PRESIGNED.format(cred="ASIAEXAMPLEEXAMPLE"),
            "https://bucket.s3.amazonaws.com/data.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=***&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600"
            "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=***&X-Amz-Signature=***",
        ),
        (
            "https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256"
            "&X-Goog-Credential=sa%40proj.iam.gserviceaccount.com%2F20240101"
            "&X-Goog-Date=20240101T000000Z&X-Goog-Expires=900&X-Goog-Signature=8a6f0c",
            "https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256"
            "&X-Goog-Credential=***&X-Goog-Date=20240101T000000Z&X-Goog-Expires=900"
            "&X-Goog-Signature=***",
        ),
        (
            "https://d1.cloudfront.net/m.bin?Expires=1700000000&Signature=abc~def&Key-Pair-Id=K2",
            "https://d1.cloudfront.net/m.bin?Expires=1700000000&Signature=***&Key-Pair-Id=K2",
        ),
        (
            "https://api.example.com/v1?token=abc123&page=2",
            "https://api.example.com/v1?token=***&page=2",
        ),
        ("https://h/cb#access_token=abc&state=xyz", "https://h/cb#access_token=***&state=xyz"),
        ("https://h/m?api_key=abc;format=json", "https://h/m?api_key=***;format=json"),
        ("https://h/login?user=bob&password=hunter2", "https://h/login?user=bob&password=***"),
        ("Server=db;Database=x;Uid=bob;Pwd=hunter2;", "Server=db;Database=x;Uid=bob;Pwd=***;"),
        ("train.py --password=hunter2 --epochs=3", "train.py --password=*** --epochs=3"),
        ("?client_secret=abc&max_tokens=512", "?client_secret=***&max_tokens=512"),
    ],
)
def test_secret_query_parameters_are_hidden_and_the_rest_kept(value: str, expected: str) -> None:
    assert redact_value("url", value) == expected
    assert SECRET not in str(redact_value("config", {"urls": [value]}))


@pytest.mark.parametrize(
    "value",
    [
        "https://h/search?q=tokens&page=2&max_tokens=512",
        "https://h/p?signed=true&version=3",
        "lr=0.01 epochs=3 optimizer=adam",
        "a==b",
        "x = password",
    ],
)
def test_ordinary_query_parameters_are_kept(value: str) -> None:
    assert redact_value("url", value) is value


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
# Passwords as people type them into URLs: '@', ':' and '/' included, no blank.
_passwords = st.text("abcXYZ019@:/!$%&*+-.=?#_~", min_size=1, max_size=12).map(
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
_plural_secrets = st.builds(
    lambda name, password: ({name: [password]}, password),
    st.sampled_from(["tokens", "api_keys", "passwords", "secrets", "credentials", "authTokens"]),
    _passwords,
)

_B62 = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _shape(
    prefixes: list[str], alphabet: str, size: int, most: int | None = None, must: str = ""
) -> st.SearchStrategy[str]:
    """Tokens of one shape: a prefix, then ``size`` (to ``most``) characters holding ``must``."""
    least = size - len(must)
    body = st.text(alphabet, min_size=least, max_size=least + 12 if most is None else most)
    return st.builds(
        lambda prefix, text, at: prefix + text[:at] + must + text[at:],
        st.sampled_from(prefixes),
        body,
        st.integers(0, least),
    )


_shaped_tokens = st.one_of(
    _shape(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], _B62, 36),
    _shape(["github_pat_"], _B62 + "_", 50),
    _shape(["glpat-"], _B62 + "_-", 20),
    _shape(["hf_"], _B62[:52], 34, must="Aa"),
    _shape(["sk-", "sk-proj-", "sk-ant-api03-"], _B62 + "_-", 20, must="Aa1"),
    _shape(["AKIA", "ASIA"], _B62[26:], 16, most=16),
    _shape(["AIza"], _B62 + "_-", 35, most=35),
    _shape(["xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxr-", "xoxs-"], _B62 + "-", 15, must="1"),
    st.builds(
        "eyJ{}.{}.{}".format,
        st.text(_B62 + "_-", min_size=15, max_size=40),
        st.text(_B62 + "_-", max_size=40),
        st.text(_B62 + "_-", max_size=40),
    ),
)
# Around a token, anything, parted from it by a character no token is made of.
_parts = st.sampled_from([" ", "\n", "\t", "'", '"', ",", ":", "=", "(", ")", "[", "/", "<"])
_shaped_secrets = st.builds(
    lambda before, left, token, right, after: (f"{before}{left}{token}{right}{after}", token),
    st.text(max_size=20),
    _parts,
    _shaped_tokens,
    _parts,
    st.text(max_size=20),
)
# A token (with a known prefix, of any length) as a URL's user.
_url_user_secrets = st.builds(
    lambda prefix, body: (
        f"https://{prefix}S3CR3T{body}@github.com/org/repo.git",
        f"{prefix}S3CR3T{body}",
    ),
    st.sampled_from(["ghp_", "gho_", "github_pat_", "glpat-", "hf_", "sk-", "xoxb-"]),
    st.text(_B62, min_size=8, max_size=30),
)
_secret_query_names = st.sampled_from(
    [
        "sig",
        "Signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "X-Goog-Signature",
        "X-Goog-Credential",
        "token",
        "access_token",
        "api_key",
        "password",
        "client_secret",
    ]
)
# What a signature or a key in a query string is made of: up to the next '&', '#' or ';'.
_query_secret_values = st.text(_B62 + "%-._~+/:@!$*=", max_size=30).map(
    lambda text: f"S3CR3T{text}"
)
_query_secrets = st.builds(
    lambda name, value: (f"https://h.example.com/f.bin?sv=2020-08-04&{name}={value}&sp=r", value),
    _secret_query_names,
    _query_secret_values,
)


@st.composite
def _with_a_secret(draw: st.DrawFn) -> tuple[Any, str]:
    """An ordinary structure with a secret put somewhere inside it, and the secret."""
    value, secret = draw(
        st.one_of(
            _url_secrets,
            _named_secrets,
            _plural_secrets,
            _shaped_secrets,
            _url_user_secrets,
            _query_secrets,
        )
    )
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


@given(st.lists(_shaped_tokens, min_size=1, max_size=3), _ordinary)
def test_property_tokens_of_every_shape_are_hidden_in_any_text(
    tokens: list[str], other: Any
) -> None:
    text = "; ".join(f"key {at}: {token}" for at, token in enumerate(tokens))
    redacted = redact_value("note", {"text": text, "other": other})
    assert [token for token in tokens if token in str(redacted)] == []
    expected = "; ".join(f"key {at}: ***" for at in range(len(tokens)))
    assert redacted["text"] == expected


_query_names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(
    lambda name: not looks_secret(name) and name.split("_")[-1] not in ("sig", "signature")
)
_query_values = st.text(_B62 + "%-._~+/:", min_size=1, max_size=12)


@given(
    st.lists(st.tuples(_query_names, _query_values), max_size=5),
    st.lists(st.tuples(_secret_query_names, _query_secret_values), min_size=1, max_size=3),
    st.randoms(use_true_random=False),
)
def test_property_secret_query_values_are_masked_and_the_rest_kept(
    plain: list[tuple[str, str]], secret: list[tuple[str, str]], random: Any
) -> None:
    pairs = [*((name, value, value) for name, value in plain)]
    pairs += [(name, value, REDACTED) for name, value in secret]
    random.shuffle(pairs)
    query = "&".join(f"{name}={value}" for name, value, _ in pairs)
    expected = "&".join(f"{name}={shown}" for name, _, shown in pairs)
    url = "https://acct.blob.core.windows.net/c/data.parquet"
    assert redact_value("url", f"{url}?{query}") == f"{url}?{expected}"


# Digests are what hash functions make of data: generated through one, so that the test
# does not search for the one digest in millions that a scanner would call a token too.
_digests = st.builds(
    lambda algorithm, data: hashlib.new(algorithm, data).digest(),
    st.sampled_from(["sha256", "sha1", "md5", "sha512", "blake2b"]),
    st.binary(),
)
_random_looking = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda value: value.hex),  # an MLflow run id
    _digests.map(bytes.hex),
    _digests.map(lambda digest: digest.hex().upper()),
    _digests.map(lambda digest: base64.b64encode(digest).decode()),
    _digests.map(lambda digest: base64.urlsafe_b64encode(digest).decode()),
)


@given(_random_looking, _ordinary)
def test_property_values_that_look_random_come_back_unchanged(digest: str, other: Any) -> None:
    for value in (
        digest,
        f"runs:/{digest}/model",
        f"sha256:{digest}",
        f"s3://bucket/{digest}/data.parquet",
        {"digest": digest, "files": [digest, other]},
    ):
        assert redact_value("config", value) is value


@given(
    st.sampled_from(["ghp_", "gho_", "ghs_", "github_pat_", "glpat-", "hf_", "sk-", "xoxb-"]),
    st.text(_B62, min_size=1, max_size=40),
    st.from_regex(r"[a-z][a-z0-9._-]{0,15}", fullmatch=True).filter(
        lambda user: not user.startswith(("gh", "glpat-", "hf_", "sk-", "xox"))
    ),
)
def test_property_a_token_as_url_user_is_hidden_and_a_plain_user_kept(
    prefix: str, body: str, user: str
) -> None:
    token = prefix + body
    assert redact_value("uri", f"https://{token}@github.com/o/r.git") == (
        "https://***@github.com/o/r.git"
    )
    plain = f"ssh://{user}@github.com/o/r.git"
    assert redact_value("uri", plain) is plain


# End to end -----------------------------------------------------------------------------

FRAMEWORK = {
    "nestfw/__init__.py": '''
        def train(
            epochs=1,
            config=None,
            endpoints=None,
            broker_url=None,
            db_uri=None,
            tokens=None,
            max_tokens=None,
            token_ids=None,
        ):
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
                    capture=(
                        "epochs",
                        "config",
                        "endpoints",
                        "broker_url",
                        "db_uri",
                        "tokens",
                        "max_tokens",
                        "token_ids",
                    ),
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


def test_tokens_signed_urls_and_token_users_never_reach_a_real_store(
    sqlite_store: MlflowClient, nestfw: Any, tmp_path: Path
) -> None:
    run_id, sha = uuid.uuid4().hex, hashlib.sha1(b"commit").hexdigest()
    digest = base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    sas = "https://acct.blob.core.windows.net/c/train.parquet?sv=2020-08-04&sp=r&sig=SAS-SIG"
    nestfw.train(
        epochs=1,
        config={
            "hub": {"repo": "org/model", "auth": HUGGING_FACE},
            "base_run": run_id,
            "commit": sha,
            "data_digest": digest,
            "notes": f"openai key {OPENAI}, aws {AWS_KEY_ID}",
            "deploy_key": PEM,
        },
        endpoints=[
            sas,
            S3_PRESIGNED.format(cred=AWS_SESSION_KEY_ID),
            "https://ghp_SECRET123@github.com/org/repo",
            "ssh://git@github.com/org/repo.git",
        ],
        broker_url=f"amqp://guest:{JWT}@mq.example.com/",
        db_uri="postgresql://u:pa/ss@db.example.com/x",
        tokens=["ghp_abc123"],
        max_tokens=512,
        token_ids=[101, 2023, 102],
    )
    (run,) = sqlite_store.search_runs(["0"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["tokens"] == REDACTED
    assert params["max_tokens"] == "512"
    assert params["token_ids"] == "[101, 2023, 102]"
    assert params["db_uri"] == "postgresql://u:***@db.example.com/x"
    assert params["broker_url"] == "amqp://guest:***@mq.example.com/"
    endpoints = params["endpoints"]
    assert "sp=r&sig=***'" in endpoints
    assert "X-Amz-Credential=***&X-Amz-Date=20240101T000000Z" in endpoints
    assert "X-Amz-Security-Token=***&X-Amz-Signature=***'" in endpoints
    assert "'https://***@github.com/org/repo', 'ssh://git@github.com/org/repo.git'" in endpoints
    config = params["config"]
    # what merely looks random is kept: ids, hashes, digests
    assert f"'base_run': '{run_id}', 'commit': '{sha}', 'data_digest': '{digest}'" in config
    assert "'notes': 'openai key ***, aws ***'" in config
    assert "'hub': ***" not in config and "'auth': '***'" in config
    assert "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----" in config

    secrets = [
        "ghp_abc123",
        "SAS-SIG",
        "aeeed9bb",
        "IQoJb3Jp",
        AWS_SESSION_KEY_ID,
        "SECRET123",
        JWT,
        "pa/ss",
        HUGGING_FACE,
        OPENAI,
        AWS_KEY_ID,
        PEM_BODY[:20],
    ]
    stored = [*params.values(), *run.data.tags.values()]
    assert [(s, v) for s in secrets for v in stored if s in v] == []
    spooled = [p for p in (tmp_path / "spool").rglob("*") if p.is_file()]
    assert not [p for p in spooled for s in secrets if s in p.read_text(errors="replace")]
