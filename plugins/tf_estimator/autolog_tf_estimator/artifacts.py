"""Files a training leaves behind, handed to the run as artifacts.

The sink uploads in the background, so it must be given files nobody changes any more.
``model_dir`` is not such a place: the next ``train`` appends to the same event file
(``FileWriterCache`` keeps it open) and ``keep_checkpoint_max`` deletes old checkpoints.
So checkpoints and event files are first snapshotted into a private temporary directory
(checkpoint files, which TensorFlow never rewrites, are hard-linked when possible, event
files copied) and the snapshot is what gets logged. An exported SavedModel is snapshotted
the same way (hard links) and becomes the run's MLflow model, a tensorflow-flavor
LoggedModel packaged by the core on its worker.

Each snapshot is made in a temporary folder of its own and handed over to the sink
(`RunSink.log_temp_artifacts`, ``log_model(temp_dir=...)``), which deletes it once
delivered: this module keeps no state, threads or exit hooks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

from autolog.plugin import RunSink
from autolog_tf_estimator import examples
from autolog_tf_estimator.summaries import EVENT_FILE_GLOB

__all__ = [
    "CHECKPOINT_ARTIFACT_PATH",
    "MODEL_ARTIFACT_PATH",
    "TENSORBOARD_ARTIFACT_PATH",
    "log_checkpoint",
    "log_event_files",
    "log_saved_model",
]

CHECKPOINT_ARTIFACT_PATH = "checkpoint"
TENSORBOARD_ARTIFACT_PATH = "tensorboard"
MODEL_ARTIFACT_PATH = "model"


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
    snapshot = _new_snapshot(CHECKPOINT_ARTIFACT_PATH)
    for path in files:
        _link_or_copy(path, os.path.join(snapshot, _basename(path)))
    prefix = _basename(latest)
    with open(os.path.join(snapshot, "checkpoint"), "w", encoding="utf-8") as handle:
        handle.write(f'model_checkpoint_path: "{prefix}"\nall_model_checkpoint_paths: "{prefix}"\n')
    sink.log_temp_artifacts(snapshot, CHECKPOINT_ARTIFACT_PATH)
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
                snapshot = _new_snapshot(TENSORBOARD_ARTIFACT_PATH)
            target_dir = os.path.join(snapshot, relative)
            os.makedirs(target_dir, exist_ok=True)
            gfile.copy(_join(directory, name), os.path.join(target_dir, name), overwrite=True)
            count += 1
    if snapshot is not None:
        sink.log_temp_artifacts(snapshot, TENSORBOARD_ARTIFACT_PATH)
    return count


def log_saved_model(
    sink: RunSink, export_dir: str | bytes, *, rows: Mapping[str, Any] | None = None
) -> str:
    """Log an exported SavedModel as the run's tensorflow-flavor MLflow model.

    The core packages it on its worker (`autolog.models`): one copy, in the LoggedModel's
    artifacts, loadable with ``mlflow.tensorflow.load_model("models:/<id>")`` (the serving
    signature's function) and with pyfunc (a dict of arrays, or a DataFrame, keyed by the
    signature's input names). Its signature is read from the export's own signature def
    (the protobuf only, no graph is loaded). ``rows`` (training's first feature rows, by
    name) become its input example when they fit that signature. Returns the export's
    version: the timestamped directory name Estimator chose.
    """
    path = os.fsdecode(export_dir)
    version = _basename(path)
    folder = tempfile.mkdtemp(prefix="autolog-tf-estimator-")
    local = os.path.join(folder, version)
    if "://" in path:  # remote export: bring it local, the core packages local files
        _copy_tree(path, local)
    else:
        # Hard links (copies across filesystems): the core packages it later, on its
        # worker, and the user may remove or overwrite the export meanwhile.
        shutil.copytree(path, local, copy_function=_link_or_copy)
    path = local
    key, tags, signature = serving_signature(path)
    sink.log_model(
        "tensorflow",
        loader=lambda: path,
        artifact_path=MODEL_ARTIFACT_PATH,
        tf_signature_def_key=key,
        tf_meta_graph_tags=tags,
        signature=signature,
        input_example=examples.input_example(rows, signature),
        requirements=("tensorflow", "tensorflow-estimator"),
        temp_dir=folder,  # the sink's from now on: deleted once the model is packaged
    )
    return version


def serving_signature(export_dir: str) -> tuple[str, list[str], dict[str, Any] | None]:
    """The signature def a server calls, its meta graph's tags, and it as an MLflow signature.

    ``serving_default`` when the export has one, else ``predict`` (a raw serving input
    receiver gets only ``predict`` from canned estimators), else the first by name. The
    MLflow signature (``{"inputs": [...], "outputs": [...]}`` of named tensors, batch
    dimension -1) is ``None`` where a shape is unknown.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as handle:
        proto.ParseFromString(handle.read())
    graphs = [g for g in proto.meta_graphs if "serve" in g.meta_info_def.tags]
    graph = (graphs or list(proto.meta_graphs))[0]
    defs = graph.signature_def
    key = next((k for k in ("serving_default", "predict") if k in defs), None) or sorted(defs)[0]
    try:
        signature: dict[str, Any] | None = {
            "inputs": _tensor_specs(defs[key].inputs),
            "outputs": _tensor_specs(defs[key].outputs),
        }
    except ValueError:
        signature = None
    return key, list(graph.meta_info_def.tags), signature


def _tensor_specs(infos: Any) -> list[dict[str, Any]]:
    import tensorflow as tf

    specs = []
    for name in sorted(infos):
        info = infos[name]
        if info.tensor_shape.unknown_rank:
            raise ValueError(f"{name}: unknown rank")
        dtype = tf.dtypes.as_dtype(info.dtype)
        specs.append(
            {
                "type": "tensor",
                "name": name,
                "tensor-spec": {
                    "dtype": "object" if dtype == tf.string else dtype.as_numpy_dtype.__name__,
                    "shape": [-1 if d.size < 0 else d.size for d in info.tensor_shape.dim],
                },
            }
        )
    return specs


# Internals ---------------------------------------------------------------------------


def _new_snapshot(name: str) -> str:
    """An empty directory ``name`` in a temporary folder of its own (handed to the sink)."""
    path = os.path.join(tempfile.mkdtemp(prefix="autolog-tf-estimator-"), name)
    os.mkdir(path)
    return path


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
