"""What the training and validation inputs of ``fit`` look like, read without consuming them.

Arrays, tensors and nests of them are described from their shapes. A ``tf.data`` pipeline
is described from its element spec, and its batch size and sample count are read from the
batching node of the pipeline graph. A ``PyDataset``/``Sequence`` is random-access, so its
first batch can be looked at. A generator cannot be looked at without taking an item, so
``fit`` gets a pass-through generator instead that notes the first item as Keras pulls
it (:class:`FirstItem`): nothing is taken before ``fit`` runs, and if ``fit`` is never
called with the replacement, the caller's generator is untouched.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KERAS_DEFAULT_BATCH_SIZE",
    "BatchSize",
    "DataInfo",
    "FirstItem",
    "describe",
    "describe_batch",
    "infer_batch_size",
    "split",
]

KERAS_DEFAULT_BATCH_SIZE = 32
_MAX_GRAPH_DEPTH = 64
# tf.data nodes above the batching node that keep the number of elements unchanged.
_COUNT_PRESERVING = frozenset(
    {
        "_PrefetchDataset",
        "_MapDataset",
        "_ParallelMapDataset",
        "_OptionsDataset",
        "_CacheDataset",
        "_ShuffleDataset",
        "_ModelDataset",
        "_MaxIntraOpParallelismDataset",
        "_PrivateThreadPoolDataset",
        "_AssertCardinalityDataset",
    }
)


@dataclass(frozen=True)
class DataInfo:
    """Shape, dtype and sample count of one input (``None`` where unknown)."""

    shape: str | None = None
    dtype: str | None = None
    samples: int | None = None

    def as_params(self, prefix: str) -> dict[str, Any]:
        values = {"shape": self.shape, "dtype": self.dtype, "samples": self.samples}
        return {f"{prefix}_{k}": v for k, v in values.items() if v is not None}


# Batch size ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSize:
    """The batch size ``fit`` will use, or how to learn it once training starts."""

    value: int | None
    watch: FirstItem | None = None
    """For a generator: the pass-through to give ``fit`` instead of ``x``."""


class FirstItem:
    """Wraps a generator; remembers the first item that goes through.

    ``fit`` receives :attr:`generator`; once Keras has pulled an item (it does before the
    first batch ends), :attr:`item` holds it and :attr:`batch_size` its leading size.
    """

    _UNSEEN: Any = object()

    def __init__(self, source: Iterator[Any]) -> None:
        self._source = source
        self._item: Any = self._UNSEEN
        self.generator = self._pass_through()

    def _pass_through(self) -> Iterator[Any]:
        # A generator function (not itertools.chain): Keras recognises generators by type.
        for item in self._source:
            if self._item is self._UNSEEN:
                self._item = item
            yield item

    @property
    def seen(self) -> bool:
        return self._item is not self._UNSEEN

    @property
    def item(self) -> Any:
        return None if self._item is self._UNSEEN else self._item

    @property
    def batch_size(self) -> int | None:
        return _leading_dim(self._item) if self.seen else None


def infer_batch_size(x: Any, explicit: int | None) -> BatchSize:
    """The batch size ``fit`` will use with input ``x`` and ``batch_size=explicit``.

    Nothing is consumed: for a generator, ``watch`` is a :class:`FirstItem` whose
    ``generator`` must be passed to ``fit`` in place of ``x``.
    """
    if x is None:
        return BatchSize(explicit)
    dataset_batch = _tf_dataset_batch_size(x)
    if dataset_batch is not _NOT_A_DATASET:
        return BatchSize(dataset_batch)
    attribute = getattr(x, "batch_size", None)
    if isinstance(attribute, int) and not isinstance(attribute, bool):
        return BatchSize(attribute)  # torch DataLoader, many PyDataset subclasses
    if _is_array_nest(x):
        return BatchSize(explicit if explicit is not None else KERAS_DEFAULT_BATCH_SIZE)
    if _is_random_access(x):
        return BatchSize(_leading_dim(x[0]) if len(x) else explicit)
    if _is_iterator(x):
        return BatchSize(None, watch=FirstItem(x))
    return BatchSize(explicit)


_NOT_A_DATASET: Any = object()


def _tf_dataset_batch_size(x: Any) -> Any:
    dataset = _tf_dataset_type()
    if dataset is None or not isinstance(x, dataset):
        return _NOT_A_DATASET
    node = _batch_node(x)
    if node is None:
        return None
    return _to_int(node._batch_size)


def _tf_dataset_type() -> type | None:
    tf = sys.modules.get("tensorflow")
    data = getattr(tf, "data", None)
    return getattr(data, "Dataset", None)


def _batch_node(dataset: Any) -> Any | None:
    node = dataset
    for _ in range(_MAX_GRAPH_DEPTH):
        if node is None:
            return None
        if hasattr(node, "_batch_size"):
            return node
        node = getattr(node, "_input_dataset", None)
    return None


def _dataset_samples(dataset: Any) -> int | None:
    node = dataset
    for _ in range(_MAX_GRAPH_DEPTH):
        if node is None:
            return None
        if hasattr(node, "_batch_size"):
            below = getattr(node, "_input_dataset", None)
            return None if below is None else _cardinality(below)
        if type(node).__name__ not in _COUNT_PRESERVING:
            return None
        node = getattr(node, "_input_dataset", None)
    return None


def _cardinality(dataset: Any) -> int | None:
    try:
        value = _to_int(dataset.cardinality())
    except Exception:  # a pipeline that cannot say
        return None
    return value if value is not None and value >= 0 else None


def _to_int(value: Any) -> int | None:
    if value is None:
        return None
    if hasattr(value, "numpy"):
        value = value.numpy()
    return int(value)


# Kinds of input ----------------------------------------------------------------------


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "__len__") and not isinstance(x, (str, bytes))


def _is_array_nest(x: Any) -> bool:
    if isinstance(x, Mapping):
        return bool(x) and all(_is_array_nest(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return bool(x) and all(_is_array_nest(v) for v in x)
    return _is_array(x)


def _is_random_access(x: Any) -> bool:
    return (
        hasattr(type(x), "__getitem__")
        and hasattr(type(x), "__len__")
        and not isinstance(x, (list, tuple, Mapping, str, bytes))
        and not _is_array(x)
    )


def _is_iterator(x: Any) -> bool:
    return inspect.isgenerator(x) or (hasattr(x, "__next__") and hasattr(x, "__iter__"))


def _first_leaf(x: Any) -> Any:
    while True:
        if isinstance(x, Mapping):
            if not x:
                return None
            x = next(iter(x.values()))
        elif isinstance(x, (list, tuple)) and not _is_array(x):
            if not x:
                return None
            x = x[0]
        else:
            return x


def _leading_dim(batch: Any) -> int | None:
    leaf = _first_leaf(batch)
    shape = getattr(leaf, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] is not None:
        return int(shape[0])
    try:
        return len(leaf)
    except TypeError:
        return None


# Descriptions --------------------------------------------------------------------------


def describe(x: Any) -> DataInfo:
    """Shape, dtype and sample count of an input, whatever form ``fit`` accepts."""
    if x is None:
        return DataInfo()
    if _tf_dataset_batch_size(x) is not _NOT_A_DATASET:
        spec = x.element_spec
        features = spec[0] if isinstance(spec, tuple) and spec else spec
        return DataInfo(
            shape=_nest_str(features, _spec_shape),
            dtype=_nest_str(features, _dtype_name),
            samples=_dataset_samples(x),
        )
    if _is_array_nest(x):
        return DataInfo(
            shape=_nest_str(x, _array_shape),
            dtype=_nest_str(x, _dtype_name),
            samples=_leading_dim(x),
        )
    if _is_random_access(x) and len(x) > 0:
        # A PyDataset/Sequence: its batch count is known, its sample count is not (the last
        # batch may be short), so only the per-batch shape is reported.
        return describe_batch(x[0])
    return DataInfo()


def describe_batch(batch: Any) -> DataInfo:
    """Shape and dtype of the features in one batch (generators: the item we peeked)."""
    features = batch[0] if isinstance(batch, tuple) and batch else batch
    return DataInfo(
        shape=_nest_str(features, _batched_shape), dtype=_nest_str(features, _dtype_name)
    )


def split(info: DataInfo, validation_split: float) -> tuple[DataInfo, DataInfo]:
    """The (train, validation) descriptions after Keras's ``validation_split``."""
    if info.samples is None or not validation_split:
        return info, DataInfo()
    total = info.samples
    # Same arithmetic as Keras's train_validation_split (Keras 2.15 and 3).
    train = math.floor(total * (1.0 - validation_split))
    return (
        DataInfo(_replace_leading(info.shape, total, train), info.dtype, train),
        DataInfo(_replace_leading(info.shape, total, total - train), info.dtype, total - train),
    )


def _replace_leading(shape: str | None, old: int, new: int) -> str | None:
    if shape is None:
        return None
    return shape.replace(f"({old},", f"({new},").replace(f"({old})", f"({new})")


def _nest_str(x: Any, leaf: Callable[[Any], str | None]) -> str | None:
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k!r}: {_nest_str(v, leaf)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)) and not _is_array(x) and not _is_spec(x):
        return "[" + ", ".join(str(_nest_str(v, leaf)) for v in x) + "]"
    return leaf(x)


def _is_spec(x: Any) -> bool:
    return type(x).__name__.endswith("Spec")


def _array_shape(x: Any) -> str | None:
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    return _shape_str(shape)


def _batched_shape(x: Any) -> str | None:
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    return _shape_str((None, *tuple(shape)[1:]))


def _spec_shape(spec: Any) -> str | None:
    shape = getattr(spec, "shape", None)
    if shape is None:
        return None
    try:
        dims = tuple(shape)
    except ValueError:  # unknown rank
        return "<unknown>"
    return _shape_str(dims)


def _shape_str(dims: Any) -> str:
    values = [None if d is None else int(d) for d in tuple(dims)]
    inner = ", ".join("None" if d is None else str(d) for d in values)
    return f"({inner},)" if len(values) == 1 else f"({inner})"


def _dtype_name(x: Any) -> str | None:
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        dtypes = getattr(x, "dtypes", None)  # a pandas DataFrame
        if dtypes is not None:
            return ", ".join(sorted({str(d) for d in dtypes}))
        return None
    name = getattr(dtype, "name", None)
    return str(name) if isinstance(name, str) else str(dtype)
