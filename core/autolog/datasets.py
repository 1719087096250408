"""Dataset inputs: the data a training or evaluation call saw, as MLflow datasets.

A plugin calls ``sink.log_dataset(features, targets=..., context="train")`` with the data
as the user passed it; the sink builds the `mlflow.data` dataset on the batching layer's
worker (`dataset_input`) and records it as a run input with its context tag, so the run's
Datasets view shows its name, digest and schema.

Only in-memory data is described: numpy arrays (or anything ``numpy.asarray`` takes, such
as eager tensors), dicts of them, and pandas DataFrames. Anything else (a generator, a
``tf.data`` pipeline, a data loader) could only be described by reading it a second time,
which may consume it or run its whole pipeline again: it is skipped, with a debug line.

The digest is MLflow's (`mlflow.data.digest_utils`): the first 10,000 values and the
shapes. It is computed here without the full copy ``numpy.ndarray.flatten`` makes, so a
large array costs a hash of 10,000 values, not a copy of the array.

This module imports MLflow and numpy (only when called), never a framework.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["CONTEXTS", "check_context", "dataset_input", "digest_of_arrays", "is_describable"]

_log = logging.getLogger(__name__)

#: The contexts autolog's own plugins use (any non-empty string is accepted).
CONTEXTS = ("train", "validation", "eval")


def check_context(context: Any) -> None:
    """Raise ``TypeError`` unless ``context`` is a non-empty string."""
    if not isinstance(context, str) or not context.strip():
        raise TypeError(
            f"log_dataset: context must be a non-empty string such as 'train', got {context!r}"
        )


def is_describable(data: Any) -> bool:
    """Whether `dataset_input` can describe ``data`` without iterating it."""
    if _is_pandas(data):
        return True
    if isinstance(data, Mapping):
        return bool(data) and all(_is_array_like(v) for v in data.values())
    return _is_array_like(data)


def dataset_input(
    features: Any, *, context: str, targets: Any = None, name: str | None = None
) -> Any | None:
    """An `mlflow.entities.DatasetInput` for ``features`` (and ``targets``), or ``None``.

    ``None`` (and a debug line) for data that cannot be described without reading it.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    dataset = _mlflow_dataset(features, targets, name)
    if dataset is None:
        _log.debug(
            "autolog: %s data of type %s is not logged as a dataset: it cannot be described "
            "without reading it again",
            context,
            type(features).__name__,
        )
        return None
    entity = Dataset(**dataset.to_dict())
    return DatasetInput(entity, tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)])


def _mlflow_dataset(features: Any, targets: Any, name: str | None) -> Any | None:
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.data.pandas_dataset import from_pandas

    if not is_describable(features) or (targets is not None and not is_describable(targets)):
        return None
    source = _source()
    if _is_pandas(features):
        frame = features
        target_column = None
        if targets is not None:
            target_column = _target_column(frame, targets)
            frame = frame.assign(**{target_column: _numpy(targets)})
        return from_pandas(frame, source=source, targets=target_column, name=name)
    x = _numpy(features)
    y: Any = None if targets is None else _numpy(targets)
    return from_numpy(x, source=source, targets=y, name=name, digest=digest_of_arrays(x, y))


def digest_of_arrays(features: Any, targets: Any = None) -> str:
    """MLflow's numpy digest (``compute_numpy_digest``) of arrays or dicts of arrays.

    The same value, from the first ``MAX_ROWS`` values of each array read through
    ``ndarray.flat``, instead of a flattened copy of the whole array.
    """
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]
    from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest

    elements: list[Any] = []

    def add(array: Any) -> None:
        head = np.asarray(array.flat[:MAX_ROWS]) if array.ndim else array.reshape(-1)
        try:
            elements.append(pd.util.hash_array(head))
        except TypeError:
            elements.append(np.int64(head.size))
        elements.extend(np.int64(dim) for dim in array.shape)

    for item in (features, targets):
        if item is None:
            continue
        if isinstance(item, Mapping):
            for key in sorted(item):
                add(item[key])
        else:
            add(item)
    return str(get_normalized_md5_digest(elements))


def _source() -> Any:
    # Where MLflow's own autologging says its datasets come from: the code that ran.
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.tracking.context.registry import resolve_tags

    return CodeDatasetSource(tags=resolve_tags())


def _numpy(data: Any) -> Any:
    import numpy as np

    if isinstance(data, Mapping):
        return {str(key): np.asarray(value) for key, value in data.items()}
    if _is_pandas(data):
        return data.to_numpy()
    return np.asarray(data)


def _target_column(frame: Any, targets: Any) -> str:
    name = getattr(targets, "name", None)
    if isinstance(name, str) and name and name not in frame.columns:
        return name
    candidate = "target"
    while candidate in frame.columns:
        candidate = f"_{candidate}"
    return candidate


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas") and hasattr(data, "columns")


def _is_array_like(data: Any) -> bool:
    if isinstance(data, (str, bytes)) or data is None:
        return False
    if type(data).__module__.startswith("pandas"):
        return hasattr(data, "to_numpy")  # a Series
    shape = getattr(data, "shape", None)
    if shape is None:
        return False
    try:
        known = all(dim is not None for dim in tuple(shape))
    except (TypeError, ValueError):  # unknown rank (a symbolic tensor)
        return False
    # An eager tensor or array converts; a symbolic one (a graph tensor) has no values.
    return known and (hasattr(data, "__array__") or hasattr(data, "numpy"))
