"""Model snapshots: the only work that must happen on the training thread.

A snapshot is ``model.save`` (or ``save_weights``) into a fresh temporary folder of its own, so each file handed
to the run's sink is one that nothing writes to again. The plugin keeps no record of
them: a snapshot is handed over to the sink (`RunSink.log_temp_artifacts`, or the
``temp_dir`` of `RunSink.log_model`) as soon as it is written, and the sink deletes its
folder once it has uploaded or packaged it.
Uploading it, and packaging an MLflow model from it, happen on the core's worker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from autolog_keras import distributed
from autolog_keras.compat import flavor_of

__all__ = ["SnapshotModel", "save"]

_PREFIX = "autolog-keras-"


def save(model: Any, filename: str = "model.keras", *, weights_only: bool = False) -> str:
    """Save ``model`` as ``<fresh temp dir>/<filename>`` and return the file's path.

    With ``weights_only``, only its weights (``model.save_weights``), into a file named
    ``*.weights.h5`` as Keras 3 requires.
    """
    suffix = ".weights.h5" if weights_only else ".keras"
    if not filename.endswith(suffix):
        raise ValueError(f"snapshot file names end in {suffix}, got {filename!r}")
    if distributed.needs_local_snapshot(model):
        model = _local_copy(model)
    directory = tempfile.mkdtemp(prefix=_PREFIX)
    path = os.path.join(directory, filename)
    try:
        if weights_only:
            model.save_weights(path)
        else:
            model.save(path)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return path


class SnapshotModel:
    """A saved model standing in for the live one where only saving it is asked for.

    ``save(path)`` copies the snapshot file: a model packaged from a snapshot is the same
    bytes, without loading the model back (the first load in a process builds the whole
    graph again) and saving it once more. Any other use of the object loads the model
    with ``load`` and delegates to it, so a caller that wants more still gets the model.
    """

    def __init__(self, path: str, load: Callable[[], Any]) -> None:
        self._path = path
        self._load = load
        self._model: Any = None

    def save(self, filepath: str, *args: Any, **kwargs: Any) -> None:
        if args or kwargs or not str(filepath).endswith(".keras"):
            # Options change the bytes written: let Keras write them.
            self._loaded().save(filepath, *args, **kwargs)
            return
        shutil.copyfile(self._path, filepath)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # our own attributes, before __init__ (copy, pickle)
            raise AttributeError(name)
        return getattr(self._loaded(), name)

    def _loaded(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model


def _local_copy(model: Any) -> Any:
    """An undistributed clone of ``model`` holding this worker's weights (no optimizer)."""
    models = flavor_of(model).module.models
    clone = models.clone_model(model)
    clone.set_weights(distributed.local_weights(model))
    return clone
