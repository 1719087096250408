"""Files a training leaves behind, handed to the run as artifacts.

The sink uploads in the background, so it must be given files nobody changes any more.
``model_dir`` is not such a place: the next ``train`` appends to the same event file
(``FileWriterCache`` keeps it open) and ``keep_checkpoint_max`` deletes old checkpoints.
So checkpoints and event files are first snapshotted into a private temporary directory
(checkpoint files, which TensorFlow never rewrites, are hard-linked when possible, event
files copied) and the snapshot is what gets logged. An exported SavedModel directory is
final once ``export_saved_model`` returns and is logged in place.

Snapshots are removed at interpreter exit. The cleanup is registered when this module is
imported (at plugin discovery, before any run exists), so it runs after autolog's own
exit-time flush: ``atexit`` runs handlers in reverse order of registration.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading

from autolog.plugin import RunSink
from autolog_tf_estimator.summaries import EVENT_FILE_GLOB

__all__ = [
    "CHECKPOINT_ARTIFACT_PATH",
    "SAVED_MODEL_ARTIFACT_PATH",
    "TENSORBOARD_ARTIFACT_PATH",
    "log_checkpoint",
    "log_event_files",
    "log_saved_model",
]

CHECKPOINT_ARTIFACT_PATH = "checkpoint"
TENSORBOARD_ARTIFACT_PATH = "tensorboard"
SAVED_MODEL_ARTIFACT_PATH = "saved_model"

_root: str | None = None
_root_lock = threading.Lock()


def log_checkpoint(sink: RunSink, model_dir: str) -> str | None:
    """Log the latest checkpoint of ``model_dir`` under ``checkpoint/``; its prefix name.

    The artifact holds the checkpoint's files and a ``checkpoint`` state file naming it,
    so ``tf.train.latest_checkpoint`` works on the downloaded directory.
    """
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(model_dir)
    if not latest:
        return None
    gfile = tf.io.gfile
    files = [p for p in gfile.glob(latest + ".*") if not p.endswith(".tempstate")]
    if not files:
        return None
    snapshot = _new_snapshot("checkpoint-")
    for path in files:
        _link_or_copy(path, os.path.join(snapshot, _basename(path)))
    prefix = _basename(latest)
    with open(os.path.join(snapshot, "checkpoint"), "w", encoding="utf-8") as handle:
        handle.write(f'model_checkpoint_path: "{prefix}"\nall_model_checkpoint_paths: "{prefix}"\n')
    sink.log_artifacts(snapshot, CHECKPOINT_ARTIFACT_PATH)
    return prefix


def log_event_files(sink: RunSink, model_dir: str) -> int:
    """Log every event file under ``model_dir`` (training and ``eval*/``) as ``tensorboard/``.

    Returns the number of files logged. The directory layout is kept, so
    ``tensorboard --logdir`` on the downloaded artifact shows train and eval curves.
    """
    import tensorflow as tf

    gfile = tf.io.gfile
    if not model_dir or not gfile.isdir(model_dir):
        return 0
    snapshot: str | None = None
    count = 0
    for directory, _subdirs, names in gfile.walk(model_dir):
        relative = os.path.relpath(directory, model_dir) if directory != model_dir else ""
        # Exported SavedModels and their variables never hold event files worth logging.
        if relative.split(os.sep)[0] == "export":
            continue
        for name in names:
            if not _matches_event_file(name):
                continue
            if snapshot is None:
                snapshot = _new_snapshot("events-")
            target_dir = os.path.join(snapshot, relative)
            os.makedirs(target_dir, exist_ok=True)
            gfile.copy(_join(directory, name), os.path.join(target_dir, name), overwrite=True)
            count += 1
    if snapshot is not None:
        sink.log_artifacts(snapshot, TENSORBOARD_ARTIFACT_PATH)
    return count


def log_saved_model(sink: RunSink, export_dir: str | bytes) -> str:
    """Log an exported SavedModel as ``saved_model/<version>/``; returns that artifact path.

    The version is the timestamped directory name Estimator chose, so the ``saved_model``
    artifact has the layout TensorFlow Serving loads (latest version wins) and several
    exports in one run (an exporter in ``train_and_evaluate``) never overwrite each other.
    """
    path = os.fsdecode(export_dir)
    artifact_path = f"{SAVED_MODEL_ARTIFACT_PATH}/{_basename(path)}"
    if "://" in path:  # remote export: bring it local first, the sink uploads local files
        local = os.path.join(_new_snapshot("saved-model-"), _basename(path))
        _copy_tree(path, local)
        path = local
    sink.log_artifacts(path, artifact_path)
    return artifact_path


# Internals ---------------------------------------------------------------------------


def _new_snapshot(prefix: str) -> str:
    global _root
    with _root_lock:
        if _root is None or not os.path.isdir(_root):
            _root = tempfile.mkdtemp(prefix="autolog-tf-estimator-")
        return tempfile.mkdtemp(prefix=prefix, dir=_root)


def _cleanup() -> None:
    if _root is not None:
        shutil.rmtree(_root, ignore_errors=True)


atexit.register(_cleanup)


def _link_or_copy(source: str, target: str) -> None:
    if "://" not in source:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another filesystem, or links not allowed: copy instead
    import tensorflow as tf

    tf.io.gfile.copy(source, target, overwrite=True)


def _copy_tree(source: str, target: str) -> None:
    import tensorflow as tf

    gfile = tf.io.gfile
    for directory, _subdirs, names in gfile.walk(source):
        relative = directory[len(source) :].lstrip("/")
        os.makedirs(os.path.join(target, relative), exist_ok=True)
        for name in names:
            gfile.copy(_join(directory, name), os.path.join(target, relative, name), True)


def _matches_event_file(name: str) -> bool:
    return name.startswith(EVENT_FILE_GLOB[:-1])


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name


def snapshot_root() -> str | None:
    """Where snapshots are kept (``None`` before the first); for tests and debugging."""
    return _root
