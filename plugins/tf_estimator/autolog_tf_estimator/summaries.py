"""Scalar summaries from the TensorBoard event files Estimator writes into ``model_dir``.

Training writes ``loss``, ``global_step/sec`` and every ``tf.compat.v1.summary.scalar`` of
the ``model_fn`` through hooks autolog does not own, straight into event files. The event
file is therefore the one place all of them meet, so autolog reads it rather than
re-running summary ops. :class:`EventTail` remembers how far it has read each file, so it
can be polled during training and once more at the end without reading anything twice, and
it starts past whatever earlier trainings in the same ``model_dir`` left behind.

Files are read through ``tf.io.gfile`` when ``model_dir`` is a URL (``gs://...``) and with
plain file calls otherwise: the gfile calls are several times slower, and they run at the
end of every ``train``. Records are split here, since TensorFlow's record readers cannot
resume from an offset.
"""

from __future__ import annotations

import glob
import os
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = ["EVENT_FILE_GLOB", "EventTail", "Scalar", "flush_cached_writer", "scalars_in_event"]

EVENT_FILE_GLOB = "events.out.tfevents.*"

# A TFRecord: uint64 length, uint32 CRC of the length, payload, uint32 CRC of the payload.
_HEADER = struct.Struct("<QI")
_FOOTER_SIZE = 4


class Scalar(NamedTuple):
    tag: str
    step: int
    value: float


class EventTail:
    """Incremental reader of the event files directly inside one directory."""

    def __init__(self, logdir: str, *, from_start: bool = False) -> None:
        self.logdir = logdir
        self._offsets: dict[str, int] = {}
        if not from_start:
            # Events already there belong to earlier trainings (or earlier runs).
            for path in self._files():
                self._offsets[path] = _size(path)

    def poll(self) -> list[Scalar]:
        """Scalars written since the last poll, in file order."""
        found: list[Scalar] = []
        for path in self._files():
            offset = self._offsets.get(path, 0)
            if _size(path) <= offset:
                continue
            data = _read_from(path, offset)
            consumed = 0
            for payload, end in _records(data):
                consumed = end
                found.extend(_scalars_in_record(payload))
            self._offsets[path] = offset + consumed
        return found

    def _files(self) -> list[str]:
        if not self.logdir:
            return []
        if _is_local(self.logdir):
            return sorted(glob.glob(_join(glob.escape(self.logdir), EVENT_FILE_GLOB)))
        gfile = _gfile()
        if not gfile.isdir(self.logdir):
            return []
        return sorted(gfile.glob(_join(self.logdir, EVENT_FILE_GLOB)))


def flush_cached_writer(logdir: str) -> None:
    """Flush the summary writer Estimator's hooks cached for ``logdir``, if there is one.

    Estimator's summary hooks share one ``tf.compat.v1.summary.FileWriterCache`` writer per
    directory and only flush it in their ``end()``, which a failing ``train`` never calls:
    without this, the last summaries before a failure would still sit in its buffer. No
    writer is ever created here (``FileWriterCache.get`` would create one).
    """
    if not logdir:
        return
    import tensorflow as tf

    cache = getattr(tf.compat.v1.summary.FileWriterCache, "_cache", None)
    if not isinstance(cache, dict):
        return
    writer = cache.get(logdir)
    if writer is None:
        wanted = _normalized(logdir)
        writer = next((w for d, w in list(cache.items()) if _normalized(d) == wanted), None)
    if writer is not None:
        writer.flush()


def _normalized(logdir: Any) -> str:
    text = str(logdir)
    return os.path.normpath(text) if _is_local(text) else text.rstrip("/")


def scalars_in_event(event: Any) -> Iterator[Scalar]:
    """The numeric scalar values of one ``Event`` proto (v1 ``simple_value`` or v2 tensors)."""
    if not event.HasField("summary"):
        return
    step = int(event.step)
    for value in event.summary.value:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            yield Scalar(value.tag, step, float(value.simple_value))
        elif kind == "tensor":
            number = _scalar_from_tensor(value.tensor)
            if number is not None:
                yield Scalar(value.tag, step, number)


def _scalar_from_tensor(tensor_proto: Any) -> float | None:
    import tensorflow as tf

    try:
        array = tf.make_ndarray(tensor_proto)
    except Exception:  # a dtype make_ndarray does not know: not a scalar we can log anyway
        return None
    # Text summaries (Estimator's own checkpoint_path) and histograms are not metrics.
    if array.size != 1 or array.dtype.kind not in "biuf":
        return None
    return float(array.reshape(()))


def _scalars_in_record(payload: bytes) -> list[Scalar]:
    from tensorflow.core.util import event_pb2

    try:
        event = event_pb2.Event.FromString(payload)
    except Exception:
        return []
    return list(scalars_in_event(event))


def _records(data: bytes) -> Iterator[tuple[bytes, int]]:
    """(payload, offset just past the record) for each complete record in ``data``.

    A record the writer has not finished flushing is left for the next poll: a file being
    appended to is only ever short at its end, so "enough bytes" means "complete".
    """
    pos = 0
    while len(data) - pos >= _HEADER.size:
        (length, _length_crc) = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length + _FOOTER_SIZE
        if end > len(data):
            return
        yield data[pos + _HEADER.size : end - _FOOTER_SIZE], end
        pos = end


def _size(path: str) -> int:
    try:
        if _is_local(path):
            return os.stat(path).st_size
        return int(_gfile().stat(path).length)
    except Exception:
        return 0


def _read_from(path: str, offset: int) -> bytes:
    opener: Any = open if _is_local(path) else _gfile().GFile
    with opener(path, "rb") as handle:
        handle.seek(offset)
        data: bytes = handle.read()
    return data


def _is_local(path: str) -> bool:
    return "://" not in path


def _gfile() -> Any:
    import tensorflow as tf

    return tf.io.gfile


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name
