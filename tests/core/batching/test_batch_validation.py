"""Item-by-item validation: pure rules (unit tests) and a property test on a real store."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_metric_name, _validate_param_name

from autolog.batching import BatchLogger, InvalidDataWarning
from autolog.batching.chunks import Chunk, ChunkBuilder
from autolog.batching.validation import (
    Invalid,
    check_key,
    metric_step,
    metric_timestamp,
    metric_value,
    text_value,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, 1.5),
        (3, 3.0),
        (True, 1.0),
        (np.float32(0.25), 0.25),
        (np.int64(-4), -4.0),
        (np.bool_(False), 0.0),
        (np.array(2.5), 2.5),
    ],
)
def test_metric_values_are_converted(value: Any, expected: float) -> None:
    assert metric_value(value) == expected


@pytest.mark.parametrize(
    "value", ["1.0", b"1", None, 1 + 2j, np.array([1.0, 2.0]), np.array("1.5"), object(), 10**400]
)
def test_non_numbers_are_invalid(value: Any) -> None:
    assert isinstance(metric_value(value), Invalid)


def test_non_finite_values_pass_through() -> None:
    assert math.isnan(metric_value(float("nan")))  # type: ignore[arg-type]
    assert metric_value(np.float64("-inf")) == -math.inf


@pytest.mark.parametrize(
    "key", ["", "/abs", "../up", "a/../b", "a//b", "bad!", "x" * 251, 7, None, "sp\u00e4ce?"]
)
def test_invalid_keys(key: Any) -> None:
    assert isinstance(check_key(key), Invalid)


@pytest.mark.parametrize("key", ["loss", "val/acc", "a.b-c d:e", "x" * 250, "\u00e9t\u00e9"])
def test_valid_keys(key: str) -> None:
    assert check_key(key) == key


def test_steps_and_timestamps() -> None:
    assert metric_step(None) == 0
    assert metric_step(np.int32(5)) == 5
    assert metric_step(3.0) == 3
    assert isinstance(metric_step(2.5), Invalid)
    assert isinstance(metric_step(2**64), Invalid)
    assert isinstance(metric_timestamp(-1), Invalid)


def test_text_values_are_truncated_and_repaired() -> None:
    assert text_value("x" * 7000, 6000) == ("x" * 6000, text_value("x" * 7000, 6000)[1])
    assert text_value("ok", 10) == ("ok", None)
    fixed, problem = text_value("a\ud800b", 10)
    assert fixed == "a?b" and problem is not None


def test_builder_respects_every_limit() -> None:
    builder = ChunkBuilder()
    chunks: list[Chunk] = []
    for i in range(2500):
        done = builder.add_metric((f"m{i}", 1.0, 0, i))
        chunks += [done] if done else []
    for i in range(150):
        done = builder.add_param(f"p{i}", "v" * 5000)
        chunks += [done] if done else []
    last = builder.take()
    chunks += [last] if last else []
    assert sum(len(c.metrics) for c in chunks) == 2500
    assert sum(len(c.params) for c in chunks) == 150
    for chunk in chunks:
        assert len(chunk.metrics) <= 1000 and len(chunk.params) <= 100 and len(chunk) <= 1000
        assert chunk.size <= 800_000


def _chunk(metrics: int = 0, params: int = 0, tags: int = 0, tag_prefix: str = "t") -> Chunk:
    return Chunk(
        [(f"m{i}", float(i), 0, i) for i in range(metrics)],
        [(f"p{i}", "v") for i in range(params)],
        [(f"{tag_prefix}{i}", "v") for i in range(tags)],
    )


@given(
    st.tuples(*[st.integers(0, 1000)] * 2),
    st.tuples(*[st.integers(0, 100)] * 2),
    st.tuples(*[st.integers(0, 100)] * 2),
)
def test_merged_chunks_stay_within_every_limit(
    metrics: tuple[int, int], params: tuple[int, int], tags: tuple[int, int]
) -> None:
    first = _chunk(metrics[0], params[0], tags[0], "a")
    later = _chunk(metrics[1], params[1], tags[1], "b")
    merged = first.merged(later)
    fits = (
        sum(metrics) <= 1000
        and sum(params) <= 100
        and sum(tags) <= 100
        and len(first) + len(later) <= 1000
    )
    assert (merged is not None) == fits
    if merged is not None:
        assert merged.metrics == first.metrics + later.metrics
        assert merged.params == first.params + later.params
        assert merged.tags == first.tags + later.tags
        assert merged.size == first.size + later.size


@given(
    st.tuples(*[st.integers(0, 6000)] * 2),
    st.tuples(*[st.integers(0, 3)] * 2),
)
def test_metric_requests_merge_up_to_what_the_writer_takes(
    metrics: tuple[int, int], params: tuple[int, int]
) -> None:
    """A writer that takes 10,000 metrics per write (the SQL bulk writer) gets requests of
    metrics alone merged up to that; a request with params stays within log_batch's limits."""
    first = _chunk(metrics[0], params[0], 0, "a")
    later = _chunk(metrics[1], params[1], 0, "b")
    merged = first.merged(later, 10_000)
    if sum(params) == 0:
        fits = sum(metrics) <= 10_000
    else:
        fits = sum(metrics) <= 1000 and len(first) + len(later) <= 1000
    assert (merged is not None) == fits
    if merged is not None:
        assert merged.metrics == first.metrics + later.metrics
        assert merged.params == first.params + later.params


def test_merged_chunks_keep_the_later_value_of_a_tag() -> None:
    first = Chunk(tags=[("status", "training"), ("a", "1")])
    merged = first.merged(Chunk(tags=[("status", "done")]))
    assert merged is not None and merged.tags == [("status", "done"), ("a", "1")]


def test_merging_is_refused_past_the_request_size() -> None:
    big = Chunk(params=[(f"p{i}", "v" * 6000) for i in range(70)])
    assert big.merged(Chunk(params=[(f"q{i}", "v" * 6000) for i in range(70)])) is None


def test_chunk_json_round_trip_is_strict_json() -> None:
    import json

    chunk = Chunk([("m", float("nan"), 1, 2), ("n", -math.inf, 3, 4)], [("p", "v")], [("t", "w")])
    data = json.loads(json.dumps(chunk.to_json(), allow_nan=False))
    back = Chunk.from_json(data)
    assert math.isnan(back.metrics[0][1]) and back.metrics[1][1] == -math.inf
    assert back.params == [("p", "v")] and back.tags == [("t", "w")]


# -- property test against a real SQLite store ------------------------------------------

keys = st.one_of(
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\- :/]{0,30}", fullmatch=True),
    st.text(max_size=12),
    st.integers(min_value=245, max_value=260).map(lambda n: "k" * n),
    st.integers(),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=2**1030, max_value=2**1031),
    st.booleans(),
    st.floats(width=32).map(np.float32),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(np.int64),
    st.booleans().map(np.bool_),
)
junk = st.one_of(st.text(max_size=5), st.none(), st.binary(max_size=3), st.just(1 + 1j))
texts = st.one_of(
    st.text(max_size=20),
    st.tuples(st.integers(min_value=5990, max_value=8100), st.text(max_size=3)).map(
        lambda t: "x" * t[0] + t[1]
    ),
)


def _mlflow_accepts_key(key: object) -> bool:
    if not isinstance(key, str) or len(key) > 250:
        return False
    try:
        _validate_metric_name(key)
        _validate_param_name(key)
    except MlflowException:
        return False
    return True


def _expected_float(value: object) -> float | None:
    if isinstance(value, (str, bytes, complex)) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None


def _same(stored: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(stored)
    if math.isinf(expected):
        return abs(stored) > 1e308 and (stored > 0) == (expected > 0)
    return stored == expected


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    metrics=st.dictionaries(keys, st.one_of(numbers, junk), max_size=8),
    params=st.dictionaries(keys, texts, max_size=4),
    tags=st.dictionaries(keys, texts, max_size=4),
)
def test_arbitrary_items_never_raise_valid_land_invalid_reported(
    client: MlflowClient,
    spool_dir: Any,
    metrics: dict[Any, Any],
    params: dict[Any, str],
    tags: dict[Any, str],
) -> None:
    run_id = client.create_run("0").info.run_id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = BatchLogger(run_id)
        for key, value in metrics.items():
            logger.log_metric(key, value, step=1)
        for key, value in params.items():
            logger.log_param(key, value)
        logger.set_tags(tags)
        logger.close()
    reports = {
        (w.message.kind, repr(w.message.key)): w.message.reason
        for w in caught
        if isinstance(w.message, InvalidDataWarning)
    }
    run = client.get_run(run_id)

    for key, value in metrics.items():
        expected = _expected_float(value)
        if _mlflow_accepts_key(key) and expected is not None:
            stored = [m.value for m in client.get_metric_history(run_id, key)]
            assert len(stored) == 1 and _same(stored[0], expected), (key, value, stored)
        else:
            assert ("metric", repr(key)) in reports, (key, value)
    for kind, items, stored_items, limit in (
        ("param", params, run.data.params, 6000),
        ("tag", tags, run.data.tags, 8000),
    ):
        for key, value in items.items():
            if not _mlflow_accepts_key(key):
                assert (kind, repr(key)) in reports
                continue
            want, _ = text_value(value, limit)
            assert stored_items[key] == want
            if len(value) > limit:
                assert (kind, repr(key)) in reports
