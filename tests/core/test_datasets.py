"""`autolog.datasets`: MLflow dataset inputs built from in-memory data, never by iterating it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from autolog import datasets


@pytest.mark.parametrize(
    "features",
    [
        np.arange(30_000, dtype="float32").reshape(-1, 3),
        np.arange(60, dtype="int64").reshape(4, 5, 3)[:, ::2],  # not contiguous
        {"b": np.ones((5, 2)), "a": np.zeros((5,))},
        np.array(["x", "y"], dtype=object),  # not hashable by pandas: sized instead
    ],
)
def test_the_digest_is_mlflows_without_copying_the_array(features: Any) -> None:
    from mlflow.data.digest_utils import compute_numpy_digest

    targets = np.arange(
        len(next(iter(features.values())) if isinstance(features, dict) else features)
    )
    assert datasets.digest_of_arrays(features) == compute_numpy_digest(features)
    assert datasets.digest_of_arrays(features, targets) == compute_numpy_digest(features, targets)


def test_an_input_carries_its_context_digest_and_schema() -> None:
    import mlflow.data

    x = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    y = np.arange(20)
    entry = datasets.dataset_input(x, targets=y, context="validation", name="digits")
    assert {t.key: t.value for t in entry.tags} == {"mlflow.data.context": "validation"}
    assert entry.dataset.name == "digits"
    assert entry.dataset.digest == mlflow.data.from_numpy(x, targets=y).digest
    schema = json.loads(entry.dataset.schema)["mlflow_tensorspec"]
    (features,) = json.loads(schema["features"])
    assert features["tensor-spec"] == {"dtype": "float32", "shape": [-1, 4]}
    assert json.loads(entry.dataset.profile)["features_shape"] == [20, 4]


def test_data_that_must_be_read_again_is_skipped_untouched(caplog: Any) -> None:
    taken: list[int] = []

    def rows() -> Any:
        for i in range(3):
            taken.append(i)
            yield np.ones((2, 2))

    generator = rows()
    with caplog.at_level("DEBUG", logger="autolog.datasets"):
        assert datasets.dataset_input(generator, context="train") is None
        assert datasets.dataset_input([[1, 2], [3, 4]], context="train") is None
        assert datasets.dataset_input(np.ones((3, 2)), targets=iter([1]), context="eval") is None
    assert taken == []  # nothing was pulled
    assert "train data of type generator is not logged as a dataset" in caplog.text


@pytest.mark.parametrize("context", ["", "  ", None, 3])
def test_a_bad_context_is_refused_by_name(context: Any) -> None:
    from autolog.testing import capture

    with pytest.raises(TypeError, match="context must be a non-empty string"):
        datasets.check_context(context)
    with capture() as store:
        sink = store.open(None, {})
        with pytest.raises(TypeError, match="context must be a non-empty string"):
            sink.log_dataset(np.ones(2), context=context)
