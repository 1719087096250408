"""The run log (spool file): every value a run logs, appended before it is sent.

One file per run (per process), ``<spool dir>/<local id>.jsonl``, JSON lines only (no
pickle: a spool file is data, never code), opened when the run's logger first logs. The
directory is created 0700 and files 0600, since logged params can be sensitive. Records
name the artifacts to upload where they were logged (a spool of the first version copied
them beside the file, in ``<local id>.files/``).

Records, in order::

    {"k": "header", "v": 1, "local_id", "tracking_uri", "run_id", "create", "pid", ...}
    {"k": "batch", "n": 1, "m": [[key, value, ts, step]...], "p": [[k, v]...], "t": [...]}
    {"k": "artifact", "n": 2, "path": "/abs/file", "artifact_path": ..., "temp": false}
    {"k": "end", "n": 3, "status": "FINISHED", "end_time": 1700000000000}
    {"k": "run", "run_id": "..."}     the run now exists (written when it is created)
    {"k": "ack", "n": 2}              every record with n <= 2 is in the store

Acks make delivery resumable: a second ``sync``, or one after a crash, starts after the
last ack, and the store's own idempotency (metrics are keyed by key, timestamp, step and
value; params may be re-logged with the same value; tags are overwritten) covers the one
request that may have landed without its ack. While a process writes a file it holds an
exclusive ``flock`` on it, so ``autolog sync`` skips files still in use; a sync holds it as
well while it delivers, and removes a delivered file before letting go of it.

`read_spool` checks every field a record's delivery needs, so a record that is JSON but
not one of ours (edited by hand, written by a broken tool) is reported by file and line
and skipped, and the code that delivers the others can trust what it is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from autolog.batching.chunks import Chunk

__all__ = ["SpoolBusy", "SpoolContents", "SpoolFile", "SpoolGone", "ensure_dir", "read_spool"]

VERSION: Final = 1
SUFFIX: Final = ".jsonl"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, sync trusts the user
    fcntl = None  # type: ignore[assignment]


class SpoolBusy(Exception):
    """Another process holds this spool file: a training still writing it, or a sync."""


class SpoolGone(Exception):
    """The spool file was removed before we could lock it: another sync delivered it."""


def ensure_dir(directory: Path) -> Path:
    """Create ``directory`` (and parents) owner-only if it does not exist."""
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    return directory


# One encoder for every line: `json.dumps` with options builds a new one per call, which
# costs the flusher as much as the encoding of a per-step record itself.
_ENCODER: Final = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def _dumps(record: dict[str, Any]) -> bytes:
    """One record as a line of strict JSON (no NaN: other tools must read the file too)."""
    try:
        text = _ENCODER.encode(record)
    except ValueError:
        # A metric value that is NaN or infinite, which strict JSON has no number for:
        # rare, so the rows are rewritten only then, not checked on every append.
        if record.get("k") != "batch" or not isinstance(record.get("m"), list):
            raise
        record = {**record, "m": [[k, _encode_float(v), ts, s] for k, v, ts, s in record["m"]]}
        text = _ENCODER.encode(record)
    return (text + "\n").encode("utf-8")


def _encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class SpoolFile:
    """An open, locked run log that records are appended to, and acknowledged in.

    The writer keeps, per record not yet acknowledged, how many values and artifacts it
    holds, so that what waits in the file is known without reading it back.
    """

    def __init__(self, path: Path, fd: int, next_seq: int, *, fsync: str = "flush") -> None:
        self.path = path
        self._fd: int | None = fd
        self.next_seq = next_seq
        self.acked = next_seq - 1
        self.fsync = fsync  # "never", "flush" (at flush/close/end) or "always"
        # (seq, values, artifacts) of each record written and not yet acknowledged.
        self._unacked: deque[tuple[int, int, int]] = deque()
        self.values = 0  # metric/param/tag values written and not yet acked
        self.artifacts = 0
        self._size = os.fstat(fd).st_size
        # The flusher appends records while a sender thread acknowledges others.
        self._lock = threading.Lock()

    @property
    def files_dir(self) -> Path:
        return self.path.with_suffix(".files")

    @property
    def last_seq(self) -> int:
        """The sequence number of the last record written (0 before the first)."""
        return self.next_seq - 1

    @property
    def caught_up(self) -> bool:
        """Whether every record written is acknowledged."""
        return self.acked >= self.last_seq

    @classmethod
    def create(
        cls, directory: Path, local_id: str, header: dict[str, Any], *, fsync: str = "flush"
    ) -> SpoolFile:
        ensure_dir(directory)
        path = directory / f"{local_id}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            if fcntl is not None:
                try:
                    # Never wait: the thread creating it serves every run of the process.
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise SpoolBusy(str(path)) from None
            spool = cls(path, fd, 1, fsync=fsync)
            if spool._size == 0:
                spool._write(_dumps({"k": "header", "v": VERSION, **header}))
        except BaseException:
            os.close(fd)
            raise
        return spool

    @classmethod
    def open(cls, path: Path) -> SpoolFile:
        """Open an existing file to deliver it (appending acks).

        Raises `SpoolBusy` if another process holds it, `SpoolGone` if it was removed
        (a sync removes a file only once all of it is delivered).
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SpoolGone(str(path)) from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise SpoolBusy(str(path)) from None
            if os.fstat(fd).st_nlink == 0:
                # Opened just before another sync, holding the lock, delivered and
                # unlinked it: what we hold is the removed file, not one to deliver.
                raise SpoolGone(str(path))
            contents = read_spool(path)
        except BaseException:
            os.close(fd)
            raise
        spool = cls(path, fd, contents.last_seq + 1)
        spool.acked = contents.acked
        for record in contents.pending:
            artifact = int(record["k"] in ("artifact", "model"))
            spool._count(record["n"], record_values(record), artifact)
        return spool

    def _write(self, data: bytes) -> None:
        """Append ``data`` whole, or not at all (a full disk must not leave half a line)."""
        if self._fd is None:
            raise ValueError(f"spool file {self.path} is closed")
        try:
            _write_all(self._fd, data)
        except OSError:
            # Cut the partial line off again, so the file stays a list of whole records.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)
        if self.fsync == "always":
            os.fsync(self._fd)

    def _count(self, seq: int, values: int, artifacts: int) -> None:
        self._unacked.append((seq, values, artifacts))
        self.values += values
        self.artifacts += artifacts

    def append(self, records: list[dict[str, Any]]) -> int:
        """Write ``records`` (each with its kind ``"k"``) in one write; the last one's seq.

        On an `OSError` (a full disk) none of them is in the file, and none is counted.
        """
        with self._lock:
            seq = self.next_seq
            lines = []
            counts = []
            for record in records:
                kind = record.pop("k")
                lines.append(_dumps({"k": kind, "n": seq, **record}))
                counts.append((seq, _values_of(kind, record), int(kind in ("artifact", "model"))))
                seq += 1
            self._write(b"".join(lines))
            self.next_seq = seq
            for count in counts:
                self._count(*count)
            return seq - 1

    def write_chunk(self, chunk: Chunk) -> int:
        return self.append([{"k": "batch", **chunk.to_json()}])

    def write_artifact(
        self, local_path: str, artifact_path: str | None, *, move: bool = False
    ) -> int:
        """Copy (or move) ``local_path`` into the spool and record it for upload."""
        seq = self.next_seq
        source = Path(local_path)
        target_dir = ensure_dir(self.files_dir) / str(seq)
        target_dir.mkdir(mode=0o700, exist_ok=True)
        target = target_dir / source.name
        is_dir = source.is_dir()
        if move:
            shutil.move(str(source), str(target))
        elif is_dir:
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
        _make_private(target)
        return self.append(
            [
                {
                    "k": "artifact",
                    "file": str(target.relative_to(self.path.parent)),
                    "artifact_path": artifact_path,
                    "is_dir": is_dir,
                }
            ]
        )

    def keep_artifact(self, seq: int, local_path: str, *, move: bool) -> None:
        """Put the file (or directory) of artifact record ``seq`` beside the log.

        Moved (ours) or copied (the user's) into ``<local id>.files/<seq>/``; a ``kept``
        record says where, and delivery takes it from there.
        """
        source = Path(local_path)
        target_dir = ensure_dir(self.files_dir) / str(seq)
        target_dir.mkdir(mode=0o700, exist_ok=True)
        target = target_dir / source.name
        if move:
            shutil.move(str(source), str(target))
        elif source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
        _make_private(target)
        relative = str(target.relative_to(self.path.parent))
        with self._lock:
            self._write(_dumps({"k": "kept", "of": seq, "file": relative}))

    def write_end(self, status: str, end_time: int) -> int:
        return self.append([{"k": "end", "status": status, "end_time": end_time}])

    def write_run_created(self, run_id: str) -> None:
        with self._lock:
            self._write(_dumps({"k": "run", "run_id": run_id}))

    def ack(self, seq: int, values: int = 0) -> None:
        """Record that every record up to ``seq`` is in the store.

        ``values`` is accepted for callers of the old signature; the counts come from
        what this writer recorded.
        """
        with self._lock:
            if seq <= self.acked:
                return
            self._write(_dumps({"k": "ack", "n": seq}))
            self.acked = seq
            unacked = self._unacked
            while unacked and unacked[0][0] <= seq:
                _, v, a = unacked.popleft()
                self.values -= v
                self.artifacts -= a

    def sync(self) -> None:
        """Make what was written survive a crash of the machine (the fsync policy permitting)."""
        if self._fd is not None and self.fsync != "never":
            os.fsync(self._fd)

    def forget(self) -> None:
        """In a forked child: drop our copy of the descriptor without touching the lock."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self, *, delete: bool = False) -> None:
        """Release the file; with ``delete``, remove it and its artifact copies first.

        Raises `OSError` if the file cannot be removed (a directory the user may not
        write to); the descriptor and its lock are released all the same.
        """
        if self._fd is None:
            return
        try:
            if delete:
                # Unlink while still holding the lock, so no sync can pick the file up
                # between our last ack and its removal.
                self.path.unlink(missing_ok=True)
                shutil.rmtree(self.files_dir, ignore_errors=True)
            elif self.fsync != "never":
                os.fsync(self._fd)
        finally:
            fd, self._fd = self._fd, None
            # Never LOCK_UN: a forked child shares the lock; closing releases only ours.
            os.close(fd)


def _values_of(kind: str, record: dict[str, Any]) -> int:
    if kind == "batch":
        return len(record["m"]) + len(record["p"]) + len(record["t"])
    return 0


@dataclasses.dataclass
class SpoolContents:
    """What one spool file says: its header, and the records not yet acknowledged."""

    path: Path
    header: dict[str, Any]
    run_id: str | None
    pending: list[dict[str, Any]]
    last_seq: int
    problems: list[str]
    acked: int = 0
    has_end: bool = False  # an end record, delivered or not: the run's end is known
    torn: int = 0  # lines cut short (a full disk, a power loss): what they held is lost

    @property
    def owns_run(self) -> bool:
        """Whether the writer created the run (and so the run is ended with its log)."""
        return bool(self.header.get("owns_run", self.header.get("create")))

    @property
    def pending_values(self) -> int:
        return sum(record_values(r) for r in self.pending)

    @property
    def files_dir(self) -> Path:
        return self.path.with_suffix(".files")


def record_values(record: dict[str, Any]) -> int:
    if record["k"] == "batch":
        return len(record["m"]) + len(record["p"]) + len(record["t"])
    return 0


# -- what a record must hold to be delivered (`read_spool` skips any that does not) --

_NON_FINITE: Final = frozenset({"NaN", "Infinity", "-Infinity"})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no number


def _is_optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def _is_metric_row(row: object) -> bool:
    if not isinstance(row, list) or len(row) != 4:
        return False
    key, value, timestamp, step = row
    number = (
        _is_int(value)
        or isinstance(value, float)
        or (isinstance(value, str) and value in _NON_FINITE)
    )
    return isinstance(key, str) and number and _is_int(timestamp) and _is_int(step)


def _is_pair(pair: object) -> bool:
    return isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)


def _rows(record: dict[str, Any], field: str, check: Callable[[object], bool]) -> str | None:
    rows = record.get(field)
    if not isinstance(rows, list):
        return f"no list {field!r}"
    if not all(check(row) for row in rows):
        return f"a malformed entry in {field!r}"
    return None


def _batch_problem(record: dict[str, Any]) -> str | None:
    return (
        _rows(record, "m", _is_metric_row)
        or _rows(record, "p", _is_pair)
        or _rows(record, "t", _is_pair)
    )


def _artifact_problem(record: dict[str, Any]) -> str | None:
    if "path" in record:
        # A run log names the file where the training process left it (a temp folder of
        # ours, or the user's own file): the log is private (0600 in a 0700 folder), so
        # only its owner can have written this line.
        path = record["path"]
        if not isinstance(path, str) or not os.path.isabs(path):
            return "'path' is not an absolute path"
        if not _is_optional_str(record.get("artifact_path")):
            return "'artifact_path' is not a string"
        return None
    if not isinstance(record.get("file"), str) or not record["file"]:
        return "no 'file'"
    # Ours are always beside the spool file: a line pointing elsewhere would upload
    # whatever local file it names.
    relative = Path(record["file"])
    if relative.is_absolute() or ".." in relative.parts:
        return "'file' is outside the spool"
    if not _is_optional_str(record.get("artifact_path")):
        return "'artifact_path' is not a string"
    return None


def _end_problem(record: dict[str, Any]) -> str | None:
    if not isinstance(record.get("status"), str):
        return "no 'status'"
    if not _is_int(record.get("end_time")):
        return "no integer 'end_time'"
    return None


_DATASET_FIELDS: Final = ("name", "digest", "source_type", "source")


def _inputs_problem(record: dict[str, Any]) -> str | None:
    inputs = record.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return "no list 'inputs'"
    for item in inputs:
        dataset = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(dataset, dict) or not isinstance(item.get("context"), str):
            return "a malformed entry in 'inputs'"
        if not all(isinstance(dataset.get(f), str) for f in _DATASET_FIELDS):
            return "a dataset without its name, digest or source"
        if not all(_is_optional_str(dataset.get(f)) for f in ("schema", "profile")):
            return "a dataset whose schema or profile is not a string"
    return None


def _header_problem(record: dict[str, Any]) -> str | None:
    for field in ("run_id", "tracking_uri"):
        if not _is_optional_str(record.get(field)):
            return f"{field!r} is not a string"
    if record.get("create") is not None and not isinstance(record["create"], dict):
        return "'create' is not an object"
    return None


def _record_problem(kind: object, record: dict[str, Any]) -> str | None:
    """Why ``record`` cannot be used (``None`` if it can); unknown kinds are left to the caller."""
    if kind == "header":
        return _header_problem(record)
    if kind == "run":
        run_id = record.get("run_id")
        return None if isinstance(run_id, str) and run_id else "no 'run_id'"
    if kind == "kept":
        if not _is_int(record.get("of")):
            return "no integer 'of'"
        return _artifact_problem({"file": record.get("file")})
    if kind in ("ack", "batch", "artifact", "model", "end", "inputs") and not _is_int(
        record.get("n")
    ):
        return "no integer 'n'"
    if kind == "batch":
        return _batch_problem(record)
    if kind == "artifact":
        return _artifact_problem(record)
    if kind == "model":
        if not isinstance(record.get("name"), str) or "path" not in record:
            return "no model 'name' or 'path'"
        return _artifact_problem(record)
    if kind == "end":
        return _end_problem(record)
    if kind == "inputs":
        return _inputs_problem(record)
    return None


def read_spool(path: Path) -> SpoolContents:
    """Parse a spool file; every line that cannot be used is reported by number.

    A line cut short (the disk filled up, or the machine lost power, mid-write) is
    counted in ``torn``: whatever it held is lost, and the user is told so.
    """
    header: dict[str, Any] = {}
    run_id: str | None = None
    records: list[dict[str, Any]] = []
    acked = 0
    last_seq = 0
    torn = 0
    has_end = False
    kept: dict[int, str] = {}  # artifact record -> its file beside the log
    problems: list[str] = []
    lines = path.read_bytes().split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            if number == len(lines) and raw.startswith(b'{"k":'):
                torn += 1
                problems.append(
                    f"{path.name}:{number}: line cut short ({len(raw)} bytes, a full disk "
                    "or a power loss mid-write); what it held is lost"
                )
            else:
                problems.append(f"{path.name}:{number}: not a spool record, skipped")
            continue
        kind = record.get("k") if isinstance(record, dict) else None
        why = "no 'k'" if kind is None else _record_problem(kind, record)
        if why is not None:
            # Complete JSON, so no torn write: someone else's line, worth a word.
            problems.append(f"{path.name}:{number}: not a spool record ({why}), skipped")
            continue
        if kind == "header":
            header = record
            run_id = record.get("run_id") or run_id
        elif kind == "run":
            run_id = record["run_id"]
        elif kind == "ack":
            acked = max(acked, record["n"])
        elif kind == "kept":
            kept[record["of"]] = record["file"]
        elif kind in ("batch", "artifact", "model", "end", "inputs"):
            records.append(record)
            last_seq = max(last_seq, record["n"])
            has_end = has_end or kind == "end"
        else:
            problems.append(f"{path.name}:{number}: unknown record kind {kind!r}, skipped")
    if not header:
        problems.append(f"{path.name}: no header; not an autolog spool file")
    for record in records:
        if record["n"] in kept:
            record.pop("path", None)
            record["file"] = kept[record["n"]]
            record["temp"] = False  # the copy beside the log goes with the log
    pending = [r for r in records if r["n"] > acked]
    return SpoolContents(
        path,
        header,
        run_id,
        pending,
        max(last_seq, acked),
        problems,
        acked=acked,
        has_end=has_end,
        torn=torn,
    )


def _make_private(path: Path) -> None:
    """Spooled copies keep their source's mode; make them owner-only like the rest."""
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        item.chmod(0o700 if item.is_dir() else 0o600)
