"""The lean ``log_batch`` to a tracking server: MLflow's own body, MLflow's own results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.service_pb2 import LogBatch
from mlflow.utils.proto_json_utils import message_to_json

from autolog.batching import stores, transport
from autolog.batching.chunks import Chunk
from autolog.batching.stores.rest import log_batch_body
from tests.core.batching.helpers import AWKWARD_ROWS, stored_metrics
from tests.support.mlflow_server import MlflowServer

INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.characters(blacklist_categories=("Cs",))  # protobuf strings are valid UTF-8
KEYS = st.text(TEXT, min_size=1, max_size=20)
ROWS = st.lists(
    st.tuples(KEYS, st.floats(allow_nan=True, allow_infinity=True), INT64, INT64), max_size=30
)
PAIRS = st.lists(st.tuples(KEYS, st.text(TEXT, max_size=40)), max_size=10)


@settings(max_examples=200, deadline=None)
@given(run_id=st.text(TEXT, min_size=1, max_size=32), metrics=ROWS, params=PAIRS, tags=PAIRS)
def test_the_body_is_the_one_mlflow_writes(
    run_id: str,
    metrics: list[tuple[str, float, int, int]],
    params: list[tuple[str, str]],
    tags: list[tuple[str, str]],
) -> None:
    message = LogBatch(
        run_id=run_id,
        metrics=[Metric(*row).to_proto() for row in metrics],
        params=[Param(*pair).to_proto() for pair in params],
        tags=[RunTag(*pair).to_proto() for pair in tags],
    )
    theirs = json.loads(message_to_json(message))
    ours = json.loads(json.dumps(log_batch_body(run_id, metrics, params, tags)))
    assert ours == theirs


def test_non_finite_values_use_protobufs_names() -> None:
    body = log_batch_body(
        "r", [("m", math.nan, 1, 0), ("m", math.inf, 2, 1), ("m", -math.inf, 3, 2)]
    )
    assert [row["value"] for row in body["metrics"]] == ["NaN", "Infinity", "-Infinity"]
    json.loads(json.dumps(body), parse_constant=lambda name: pytest.fail(f"bare {name}"))


@pytest.mark.server
def test_a_run_written_lean_equals_one_written_by_log_batch(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    if not mlflow_server.running:
        mlflow_server.restart()
    plain = MlflowClient(mlflow_server.url)
    writer = stores.writer_for(stores.client_for(mlflow_server.url, 30.0))
    assert writer.kind == "rest", "the single-attempt client to a server has no lean log_batch"
    experiment = plain.create_experiment(f"lean-{tmp_path.name}")
    lean = plain.create_run(experiment).info.run_id
    reference = plain.create_run(experiment).info.run_id
    params = [("lr", "0.1"), ("layers", "3")]
    tags = [("stage", "dev"), ("note", "é ✓")]

    writer.write_chunk(lean, Chunk(AWKWARD_ROWS[:4], params, tags))
    writer.write_chunk(lean, Chunk(AWKWARD_ROWS[4:]))
    plain.log_batch(
        reference,
        metrics=[Metric(*row) for row in AWKWARD_ROWS],
        params=[Param(*pair) for pair in params],
        tags=[RunTag(*pair) for pair in tags],
    )

    assert stored_metrics(plain, lean) == stored_metrics(plain, reference)
    lean_data, reference_data = plain.get_run(lean).data, plain.get_run(reference).data
    assert lean_data.params == reference_data.params == dict(params)
    assert {k: lean_data.tags[k] for k, _ in tags} == dict(tags)

    # The server's refusals come back as MLflow's own errors, which the retry policy reads.
    with pytest.raises(MlflowException) as refused:
        writer.write_chunk(lean, Chunk(params=[("lr", "0.2")]))  # a param cannot change
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert transport.classify(refused.value) == "item"
