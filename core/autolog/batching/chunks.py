"""Packing validated items into ``log_batch`` requests within MLflow's limits.

A `Chunk` is one request's worth for one run: at most 1000 metrics, 100 params,
100 tags, 1000 entities in all, and an estimated JSON body under MLflow's 1 MB cap.
`ChunkBuilder` fills chunks in arrival order and hands each one over when the next
item would not fit. A chunk can be halved (to isolate an item the store rejects) and
serialized to/from JSON for the spool.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

__all__ = [
    "MAX_ENTITIES",
    "MAX_METRICS",
    "MAX_PARAMS",
    "MAX_REQUEST_BYTES",
    "MAX_TAGS",
    "Chunk",
    "ChunkBuilder",
    "MetricRow",
]

MAX_METRICS: Final = 1000
MAX_PARAMS: Final = 100
MAX_TAGS: Final = 100
MAX_ENTITIES: Final = 1000
# MLflow refuses bodies over 1 MB; stay well below, as our size is an estimate.
MAX_REQUEST_BYTES: Final = 800_000

MetricRow = tuple[str, float, int, int]  # key, value, timestamp (ms), step


def text_size(text: str) -> int:
    """Upper-bound-ish size of ``text`` inside a JSON body."""
    if text.isascii() and text.isprintable():
        return len(text) + text.count('"') + text.count("\\") + 2
    return 6 * len(text) + 2  # \uXXXX escapes at worst


_METRIC_OVERHEAD: Final = 90  # {"key":..,"value":..,"timestamp":"..","step":".."}
_PAIR_OVERHEAD: Final = 30


class Chunk:
    """One ``log_batch`` request for one run. Tags keep their last value per key."""

    __slots__ = ("metrics", "params", "size", "tags")

    def __init__(
        self,
        metrics: list[MetricRow] | None = None,
        params: list[tuple[str, str]] | None = None,
        tags: list[tuple[str, str]] | None = None,
    ) -> None:
        self.metrics: list[MetricRow] = metrics if metrics is not None else []
        self.params: list[tuple[str, str]] = params if params is not None else []
        self.tags: list[tuple[str, str]] = tags if tags is not None else []
        self.size = (
            sum(text_size(m[0]) + _METRIC_OVERHEAD for m in self.metrics)
            + sum(text_size(k) + text_size(v) + _PAIR_OVERHEAD for k, v in self.params)
            + sum(text_size(k) + text_size(v) + _PAIR_OVERHEAD for k, v in self.tags)
        )

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    @property
    def metric_only(self) -> bool:
        return not self.params and not self.tags

    def entities(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        for p in self.params:
            yield "param", p
        for m in self.metrics:
            yield "metric", m
        for t in self.tags:
            yield "tag", t

    def merged(self, later: Chunk, max_metrics: int = MAX_METRICS) -> Chunk | None:
        """This chunk's items and then ``later``'s as one request, or ``None`` if too many.

        Two requests that wait behind one in flight cost two round trips (two
        transactions on a SQL store) where one would do. ``max_metrics`` above
        `MAX_METRICS` is for a writer that takes more metrics in one write than one
        ``log_batch`` does (see `StoreWriter.metrics_per_write`): two requests of metrics
        alone then merge up to it, past ``log_batch``'s limits.
        """
        if (
            max_metrics > MAX_METRICS
            and self.metric_only
            and later.metric_only
            and len(self.metrics) + len(later.metrics) <= max_metrics
        ):
            return Chunk(self.metrics + later.metrics)
        if (
            len(self) + len(later) > MAX_ENTITIES
            or self.size + later.size > MAX_REQUEST_BYTES
            or len(self.metrics) + len(later.metrics) > MAX_METRICS
            or len(self.params) + len(later.params) > MAX_PARAMS
            or len(self.tags) + len(later.tags) > MAX_TAGS
        ):
            return None
        tags = dict(self.tags)
        tags.update(later.tags)  # a later value of a tag wins, as it would in order
        return Chunk(self.metrics + later.metrics, self.params + later.params, list(tags.items()))

    def halves(self) -> tuple[Chunk, Chunk]:
        """Two chunks with the items of this one, in order (params, then metrics, then tags)."""
        items = list(self.entities())
        mid = len(items) // 2
        return _from_entities(items[:mid]), _from_entities(items[mid:])

    # -- spool form: plain JSON, non-finite floats as strings (strict JSON has no NaN) --

    def to_json(self) -> dict[str, Any]:
        return {
            "m": [[k, _encode_float(v), ts, s] for k, v, ts, s in self.metrics],
            "p": [list(p) for p in self.params],
            "t": [list(t) for t in self.tags],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chunk:
        return cls(
            metrics=[(str(k), _decode_float(v), int(ts), int(s)) for k, v, ts, s in data["m"]],
            params=[(str(k), str(v)) for k, v in data["p"]],
            tags=[(str(k), str(v)) for k, v in data["t"]],
        )


def _from_entities(items: list[tuple[str, tuple[Any, ...]]]) -> Chunk:
    chunk = Chunk()
    for kind, item in items:
        getattr(chunk, kind + "s").append(item)
    chunk.size = Chunk(chunk.metrics, chunk.params, chunk.tags).size
    return chunk


def _encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _decode_float(value: float | str) -> float:
    return float(value)


class ChunkBuilder:
    """Fills chunks in arrival order; ``add_*`` return a full chunk when one is complete."""

    def __init__(self) -> None:
        # A metric's estimated size depends on its key only; a training loop logs the same
        # few keys thousands of times.
        self._metric_sizes: dict[str, int] = {}
        self._start()

    def _start(self) -> None:
        self.current = Chunk()
        self.count = 0  # items in `current`, kept here: it is read for every item added
        self._tag_index: dict[str, int] = {}

    def __len__(self) -> int:
        return self.count

    def take(self) -> Chunk | None:
        """The chunk being filled (``None`` if empty); the builder starts a new one."""
        if not self.count:
            return None
        chunk = self.current
        self._start()
        return chunk

    def _room(self, kind: str, size: int) -> Chunk | None:
        c = self.current
        full = (
            self.count >= MAX_ENTITIES
            or c.size + size > MAX_REQUEST_BYTES
            or (kind == "metric" and len(c.metrics) >= MAX_METRICS)
            or (kind == "param" and len(c.params) >= MAX_PARAMS)
            or (kind == "tag" and len(c.tags) >= MAX_TAGS)
        )
        return self.take() if full and self.count else None

    def add_metric(self, row: MetricRow) -> Chunk | None:
        key = row[0]
        size = self._metric_sizes.get(key)
        if size is None:
            if len(self._metric_sizes) > 50_000:
                self._metric_sizes.clear()  # keys made up per step must not grow this forever
            size = self._metric_sizes[key] = text_size(key) + _METRIC_OVERHEAD
        c = self.current
        done = None
        if self.count and (
            self.count >= MAX_ENTITIES
            or len(c.metrics) >= MAX_METRICS
            or c.size + size > MAX_REQUEST_BYTES
        ):
            done = self.take()
            c = self.current
        c.metrics.append(row)
        c.size += size
        self.count += 1
        return done

    def add_param(self, key: str, value: str) -> Chunk | None:
        size = text_size(key) + text_size(value) + _PAIR_OVERHEAD
        done = self._room("param", size)
        self.current.params.append((key, value))
        self.current.size += size
        self.count += 1
        return done

    def add_tag(self, key: str, value: str) -> Chunk | None:
        size = text_size(key) + text_size(value) + _PAIR_OVERHEAD
        index = self._tag_index.get(key)
        if index is not None:
            # Same key twice in one request: the later value wins, as it would in order.
            old_key, old_value = self.current.tags[index]
            self.current.size -= text_size(old_key) + text_size(old_value) + _PAIR_OVERHEAD
            self.current.tags[index] = (key, value)
            self.current.size += size
            return None
        done = self._room("tag", size)
        self._tag_index[key] = len(self.current.tags)
        self.current.tags.append((key, value))
        self.current.size += size
        self.count += 1
        return done
