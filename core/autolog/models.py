"""Packaging an MLflow model on the batching layer's worker, never on the training thread.

A plugin calls ``sink.log_model(flavor, loader, artifact_path, **save_kwargs)``; the sink
runs `package_model` on its background worker, which

1. calls ``loader()`` to get the object to save (typically it loads a snapshot file the
   plugin wrote on the training thread, so training can go on changing the live model);
2. creates an MLflow 3 *LoggedModel* named ``artifact_path`` whose source run is the run
   (its params copied from the run, as ``mlflow.<flavor>.log_model`` does), and records it
   as the run's output, so it shows in the run's Models tab;
3. calls ``mlflow.<flavor>.save_model(model, <temp dir>, **save_kwargs)`` with explicit
   ``pip_requirements``, so MLflow never runs its dependency inference (which loads the
   model again in a subprocess and takes seconds) — the pins are computed once per
   process and flavor from installed versions;
4. uploads the directory as the LoggedModel's artifacts and marks it READY, so it loads
   with ``mlflow.<flavor>.load_model("models:/<model_id>")``;
5. links the run's final metric values to the model (MLflow's ``model_id`` on a metric:
   they show on the model's page), as ``mlflow.<flavor>.autolog`` does.

All of it happens right there on the worker, so the model is in the store when the run's
``flush``/``end_run`` returns (``end_run`` is usually called before this work runs, and
the work is ordered before the run's end). Where the store cannot take a LoggedModel
(it is unreachable, or the run is not created yet), the model directory is logged as
run artifacts under ``artifact_path`` instead, through the logger, whose spool keeps it
for ``autolog sync``; ``mlflow.<flavor>.load_model("runs:/<run_id>/<artifact_path>")``
loads it then.

Three keyword arguments are understood here rather than passed to ``save_model``
unchanged, because plugins must not import MLflow:

* ``signature``: an `mlflow.models.ModelSignature`, or plain data in MLflow's
  schema format, ``{"inputs": [...], "outputs": [...]}`` (lists or JSON strings of
  ``{"type": "tensor", "tensor-spec": {"dtype": ..., "shape": [...]}}`` entries).
* ``input_example``: a few rows of what the model was trained on (a numpy array or
  anything ``numpy.asarray`` takes, a dict of them, a pandas DataFrame), saved with the
  model as MLflow saves an input example.
* ``requirements``: import or distribution names (e.g. ``("keras", "tensorflow")``) to pin
  at their installed versions, on top of the flavor's own defaults.

A SavedModel the framework exported itself (``Estimator.export_saved_model``: a TF1-style
graph with signature defs) is not something ``mlflow.tensorflow.save_model`` takes any
more. With flavor ``"tensorflow"`` and ``tf_signature_def_key`` (and optionally
``tf_meta_graph_tags``, default ``["serve"]``), ``loader()`` returns the export directory
and it is packaged the way MLflow 1.x saved one: the directory copied as ``tfmodel/`` and a
``tensorflow`` flavor naming its tags and signature def, which MLflow 3's loader still
reads: ``mlflow.tensorflow.load_model`` returns that signature's function, and pyfunc's
``predict`` takes a dict of arrays (or a DataFrame) keyed by the signature's input names.

`log_model_metrics` links later metrics (``evaluate()`` results) to the run's model.

This module imports MLflow (only when called) and never a framework.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from autolog import warmup

__all__ = [
    "ArtifactLogger",
    "link_final_metrics",
    "link_metrics",
    "model_of_run",
    "package_model",
    "pip_requirements",
    "registered",
    "warm_up",
    "warm_up_models",
]

_log = logging.getLogger(__name__)

# The LoggedModel last packaged for each run in this process (run id -> model id): where
# evaluate() results logged later through another sink of the same run are linked.
_run_models: dict[str, str] = {}
_run_models_lock = threading.Lock()


class ArtifactLogger(Protocol):
    """The part of the run's logger that `package_model` uses."""

    @property
    def run_id(self) -> str | None: ...

    def log_temp_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None: ...


def package_model(
    logger: ArtifactLogger,
    *,
    flavor: str,
    loader: Callable[[], Any],
    artifact_path: str = "model",
    signature: Any = None,
    input_example: Any = None,
    requirements: Iterable[str] = (),
    client: Any = None,
    **save_kwargs: Any,
) -> str | None:
    """Save the model ``loader()`` returns as an MLflow LoggedModel; returns its id.

    Runs on the batching layer's worker. ``client`` is the `mlflow.MlflowClient` of the
    run's store; without it, or when the store cannot create the LoggedModel, the model
    goes to the run's artifacts under ``artifact_path`` (and ``None`` is returned).
    ``save_kwargs`` go to ``mlflow.<flavor>.save_model``; an explicit
    ``pip_requirements``/``conda_env`` there replaces the cached pins.
    """
    flavor_module: Any = importlib.import_module(f"mlflow.{flavor}")
    if flavor == "tensorflow" and "tf_signature_def_key" in save_kwargs:
        flavor_module = _ExportedSavedModel(
            save_kwargs.pop("tf_signature_def_key"),
            save_kwargs.pop("tf_meta_graph_tags", None) or ("serve",),
        )
    model = loader()
    if "pip_requirements" not in save_kwargs and "conda_env" not in save_kwargs:
        save_kwargs["pip_requirements"] = pip_requirements(flavor, tuple(requirements))
    # save_model checks the pins against the environment with MLflow's map: have it ready.
    _packages_distributions()
    if signature is not None:
        save_kwargs["signature"] = _signature(signature)
    if input_example is not None:
        save_kwargs["input_example"] = _example(input_example)
    name = os.path.basename(artifact_path.rstrip("/")) or "model"
    run_id = logger.run_id
    logged = None
    if client is not None and run_id is not None and "mlflow_model" not in save_kwargs:
        try:
            logged = _create_logged_model(client, run_id, name)
        except Exception as exc:  # an unreachable store: the run's artifacts keep it
            _log.debug("autolog: no LoggedModel for run %s (%s)", run_id, exc)
    root = tempfile.mkdtemp(prefix="autolog-model-")
    path = os.path.join(root, name)
    # Made empty beforehand (which every flavor accepts): mlflow.keras writes the input
    # example before it creates the directory.
    os.makedirs(path)
    if logged is None:
        if "mlflow_model" not in save_kwargs:
            from mlflow.models import Model

            # Recorded in MLmodel, as mlflow.<flavor>.log_model would.
            save_kwargs["mlflow_model"] = Model(run_id=run_id, artifact_path=artifact_path)
        flavor_module.save_model(model, path, **save_kwargs)
        # Queued right after this work, ahead of the run's end, through the run log: the
        # logger registers it as the run's LoggedModel when it is delivered (now, or once
        # the store is back), or keeps it as run artifacts where the store has none.
        log_model_dir = getattr(logger, "log_model_dir", None)
        if callable(log_model_dir):
            log_model_dir(path, name, artifact_path)
        else:
            logger.log_temp_artifacts(path, artifact_path)
        return None
    return _fill_logged_model(
        client, logger, logged, flavor_module, model, path, artifact_path, save_kwargs
    )


class _ExportedSavedModel:
    """``save_model`` for a SavedModel directory exported by the framework (see above).

    What ``mlflow.tensorflow.save_model(tf_saved_model_dir=...)`` wrote in MLflow 1.x: the
    flavor configuration MLflow 3.17's ``mlflow.tensorflow`` still loads as its
    "tf1-estimator" model type (no ``keras`` flavor, a ``signature_def_key``).
    """

    def __init__(self, signature_def_key: str, meta_graph_tags: Iterable[str]) -> None:
        self.signature_def_key = str(signature_def_key)
        self.meta_graph_tags = [str(tag) for tag in meta_graph_tags]

    def save_model(
        self,
        model: Any,
        path: str,
        *,
        mlflow_model: Any = None,
        signature: Any = None,
        input_example: Any = None,
        pip_requirements: Any = None,
        conda_env: Any = None,
        **unknown: Any,
    ) -> None:
        from mlflow import pyfunc
        from mlflow.models import Model
        from mlflow.models.model import MLMODEL_FILE_NAME
        from mlflow.models.utils import _save_example

        # MLflow's own (untyped) helpers, as its flavors' save_model use them.
        env: Any = importlib.import_module("mlflow.utils.environment")
        yaml: Any = importlib.import_module("yaml")

        if unknown:
            raise TypeError(
                "an exported SavedModel takes no save_model argument "
                + ", ".join(repr(k) for k in sorted(unknown))
            )
        source = os.fsdecode(model)
        if not os.path.isfile(os.path.join(source, "saved_model.pb")):
            raise FileNotFoundError(f"no saved_model.pb in the exported SavedModel {source!r}")
        mlflow_model = mlflow_model if mlflow_model is not None else Model()
        shutil.copytree(source, os.path.join(path, "tfmodel"))
        _save_example(mlflow_model, input_example, path)
        if signature is not None:
            mlflow_model.signature = signature
        mlflow_model.add_flavor(
            "tensorflow",
            saved_model_dir="tfmodel",
            meta_graph_tags=self.meta_graph_tags,
            signature_def_key=self.signature_def_key,
            code=None,
        )
        pyfunc.add_to_model(
            mlflow_model,
            loader_module="mlflow.tensorflow",
            conda_env=env._CONDA_ENV_FILE_NAME,
            python_env=env._PYTHON_ENV_FILE_NAME,
        )
        mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))
        if conda_env is None:
            conda, pins, constraints = env._process_pip_requirements(
                pip_requirements or [], pip_requirements
            )
        else:
            conda, pins, constraints = env._process_conda_env(conda_env)
        with open(os.path.join(path, env._CONDA_ENV_FILE_NAME), "w", encoding="utf-8") as f:
            yaml.safe_dump(conda, stream=f, default_flow_style=False)
        if constraints:
            with open(os.path.join(path, env._CONSTRAINTS_FILE_NAME), "w", encoding="utf-8") as f:
                f.write("\n".join(constraints))
        with open(os.path.join(path, env._REQUIREMENTS_FILE_NAME), "w", encoding="utf-8") as f:
            f.write("\n".join(pins))
        env._PythonEnv.current().to_yaml(os.path.join(path, env._PYTHON_ENV_FILE_NAME))


def _create_logged_model(client: Any, run_id: str, name: str) -> Any:
    """A PENDING LoggedModel of the run's experiment, with the run's params and context."""
    from mlflow.tracking.context.registry import resolve_tags

    run = client.get_run(run_id)
    return client.create_logged_model(
        experiment_id=run.info.experiment_id,
        name=name,
        source_run_id=run_id,
        params={key: str(value) for key, value in run.data.params.items()},
        tags=resolve_tags(),
    )


def _fill_logged_model(
    client: Any,
    logger: ArtifactLogger,
    logged: Any,
    flavor_module: Any,
    model: Any,
    path: str,
    artifact_path: str,
    save_kwargs: dict[str, Any],
) -> str | None:
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    model_id = str(logged.model_id)
    run_id = str(logged.source_run_id)
    # What mlflow.<flavor>.log_model records in MLmodel for a LoggedModel.
    save_kwargs["mlflow_model"] = Model(
        artifact_path=logged.artifact_location,
        model_uuid=model_id,
        run_id=run_id,
        model_id=model_id,
    )
    try:
        flavor_module.save_model(model, path, **save_kwargs)
    except Exception:
        _finalize(client, model_id, LoggedModelStatus.FAILED)
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        raise
    try:
        client.log_model_artifacts(model_id, path)
    except Exception as exc:
        # The store took the model's record but not its files: keep the files as the
        # run's artifacts (spooled for `autolog sync` if need be) rather than lose them.
        _log.debug("autolog: uploading LoggedModel %s failed (%s)", model_id, exc)
        _finalize(client, model_id, LoggedModelStatus.FAILED)
        logger.log_temp_artifacts(path, artifact_path)
        return None
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
    with _run_models_lock:
        _run_models[run_id] = model_id
    _link_final_metrics(client, run_id, model_id)
    return model_id


def registered(run_id: str, model_id: str) -> None:
    """Remember ``model_id`` as ``run_id``'s model (for metrics linked to it later)."""
    with _run_models_lock:
        _run_models[run_id] = model_id


def link_final_metrics(client: Any, run_id: str, model_id: str) -> None:
    """Link the last value of each of the run's metrics to ``model_id`` (see below)."""
    _link_final_metrics(client, run_id, model_id)


def _finalize(client: Any, model_id: str, status: Any) -> None:
    try:
        client.finalize_logged_model(model_id, status)
    except Exception as exc:
        _log.debug("autolog: could not mark LoggedModel %s %s (%s)", model_id, status, exc)


def _link_final_metrics(client: Any, run_id: str, model_id: str) -> None:
    """Link the last value of each of the run's metrics to ``model_id``.

    The values are re-sent with ``model_id`` exactly as stored (same key, value, step and
    timestamp): the store files them under the model and keeps one copy in the run's
    history. `Model.log` does the same for the metrics of one step.
    """
    from mlflow.entities import Metric

    latest = [
        Metric(
            key=last.key,
            value=last.value,
            timestamp=last.timestamp,
            step=last.step,
            model_id=model_id,
            run_id=run_id,
        )
        for last in _latest_metrics(client, run_id)
    ]
    if latest:
        client.log_batch(run_id, metrics=latest)


def _latest_metrics(client: Any, run_id: str) -> list[Any]:
    """The run's last value of each metric, with its step and timestamp.

    One request: the run as the store returns it carries each metric's latest entry
    (highest step, then latest timestamp); `RunData` keeps those entries, though only
    privately. Without them, each metric's history is read, as `Model.log` does.
    """
    data = client.get_run(run_id).data
    entries = getattr(data, "_metric_objs", None)
    if isinstance(entries, list) and all(
        hasattr(m, "step") and hasattr(m, "timestamp") for m in entries
    ):
        return entries
    found = []
    for key in data.metrics:
        history = client.get_metric_history(run_id, key)
        if history:
            found.append(max(history, key=lambda m: (m.step, m.timestamp)))
    return found


def model_of_run(client: Any, run_id: str) -> str | None:
    """The id of the LoggedModel last packaged for ``run_id``: this process's, else the store's."""
    with _run_models_lock:
        known = _run_models.get(run_id)
    if known is not None:
        return known
    outputs = getattr(client.get_run(run_id), "outputs", None)
    models = list(getattr(outputs, "model_outputs", None) or [])
    return str(models[-1].model_id) if models else None


def link_metrics(
    client: Any,
    run_id: str,
    metrics: Mapping[str, float],
    step: int,
    timestamp: int,
    *,
    dataset: tuple[str, str] | None = None,
) -> str | None:
    """Link metrics already logged to ``run_id`` (with ``step``, ``timestamp``) to its model.

    ``dataset``: the ``(name, digest)`` of the dataset they were measured on. Returns the
    model id, or ``None`` when the run has no LoggedModel (nothing to link).
    """
    from mlflow.entities import Metric

    model_id = model_of_run(client, run_id)
    if model_id is None:
        return None
    name, digest = dataset if dataset is not None else (None, None)
    linked = [
        Metric(
            key,
            value,
            timestamp,
            step,
            model_id=model_id,
            dataset_name=name,
            dataset_digest=digest,
            run_id=run_id,
        )
        for key, value in metrics.items()
    ]
    if linked:
        client.log_batch(run_id, metrics=linked)
    return model_id


@functools.cache
def pip_requirements(flavor: str, requirements: tuple[str, ...] = ()) -> list[str]:
    """Pinned requirements for a model of ``flavor``: computed once per process.

    The flavor's ``get_default_pip_requirements()`` (a metadata lookup, no inference)
    plus each of ``requirements`` pinned at its installed version. A name that is an
    import name (``tensorflow``) is resolved to the distribution that provides it
    (``tensorflow-cpu``), unless the flavor's defaults already pin that package.
    """
    flavor_module = importlib.import_module(f"mlflow.{flavor}")
    defaults = getattr(flavor_module, "get_default_pip_requirements", None)
    pins: list[str] = list(defaults()) if defaults is not None else []
    pinned = {_canonical(_requirement_name(pin)) for pin in pins}
    for name in requirements:
        if _canonical(name) in pinned:
            continue
        pin = _pin(name)
        if pin is None:
            continue
        key = _canonical(_requirement_name(pin))
        if key not in pinned:
            pinned.add(key)
            pins.append(pin)
    return pins


def _pin(name: str) -> str | None:
    """``dist==version`` for an installed distribution or import name, else ``None``."""
    from importlib import metadata

    for dist in (name, *_distributions_of(name)):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        # A local label (2.1.0+cpu) cannot be installed from PyPI.
        return f"{_canonical(dist)}=={version.split('+', 1)[0]}"
    return None


def _distributions_of(import_name: str) -> list[str]:
    return list(_packages_distributions().get(import_name, []))


_map_lock = threading.Lock()


def _packages_distributions() -> Mapping[str, list[str]]:
    # MLflow builds this same map the first time any save_model checks requirements; build
    # it once, in MLflow's own cache. The lock makes packaging wait for a warm-up already
    # doing it instead of doing it twice.
    from mlflow.utils import requirements_utils

    with _map_lock:
        if requirements_utils._MODULES_TO_PACKAGES is None:
            _init_mlflow_map(requirements_utils)
    return requirements_utils._MODULES_TO_PACKAGES or {}


def _init_mlflow_map(requirements_utils: Any) -> None:
    """Have MLflow initialise its map from a walk done in a child process.

    The walk reads every installed distribution's file list: about 0.25 s of pure Python
    that, in this process, holds the GIL against the training it overlaps with (the first
    ``fit`` with models measured 0.4 s slower for it). A child process walks the same
    ``sys.path`` on another core; MLflow then builds its map from that answer exactly as
    from its own walk. Without a usable child, MLflow walks here as before.
    """
    found = _walk_in_child()
    if found is None:
        requirements_utils._init_modules_to_packages_map()
        return
    metadata = requirements_utils.importlib_metadata
    # Lent for this one call; another thread asking meanwhile gets the same answer.
    own = metadata.packages_distributions
    metadata.packages_distributions = lambda: {k: list(v) for k, v in found.items()}
    try:
        requirements_utils._init_modules_to_packages_map()
    finally:
        metadata.packages_distributions = own


_WALK = """
import json, sys
sys.path[:] = json.loads(sys.stdin.read())
import importlib_metadata
json.dump(importlib_metadata.packages_distributions(), sys.stdout)
"""


def _walk_in_child(timeout: float = 60.0) -> dict[str, list[str]] | None:
    """``importlib_metadata.packages_distributions()`` over this ``sys.path``, in a child."""
    if not sys.executable:
        return None
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _WALK],
            input=json.dumps([p for p in sys.path if isinstance(p, str)]),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        found = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    if not isinstance(found, dict) or not all(
        isinstance(v, list) and all(isinstance(d, str) for d in v) for v in found.values()
    ):
        return None
    return found


def warm_up(flavor: str | None = None, requirements: Iterable[str] = ()) -> None:
    """Start, in autolog's warm-up thread, the one-off work the first packaged model does.

    Call it where MLflow is imported already (``autolog()`` imports it).

    The first ``save_model`` of a process spends seconds in MLflow's requirement checks
    (mapping every installed file to its distribution). ``autolog()`` starts that part
    (no ``flavor``) as soon as a plugin that logs models is enabled; a plugin calls this
    again with its flavor when training starts, to import the flavor and pin its
    requirements while training runs, instead of at the end of the first ``fit``.
    Idempotent and cheap after the first call; errors are left for the real packaging to
    report.

    Nothing is done where MLflow's requirement module is not imported yet (a test's
    in-memory backend never imports MLflow): the warm-up thread would import MLflow
    itself, and a package imported by two threads at once can hand one of them a
    half-initialised module.
    """
    if "mlflow.utils.requirements_utils" not in sys.modules:
        return
    warmup.submit(("packaging", None, ()), _packages_distributions)
    if flavor is not None:
        # Imported here, on the caller's thread (see `autolog.warmup`); with the framework
        # already loaded by training, a flavor module costs milliseconds.
        try:
            importlib.import_module(f"mlflow.{flavor}")
        except Exception:  # the real packaging reports it
            return
        pinned = tuple(requirements)
        warmup.submit(("packaging", flavor, pinned), lambda: pip_requirements(flavor, pinned))


def warm_up_models(flavor: str, requirements: Iterable[str] = ()) -> None:
    """Get the first packaged model of ``flavor`` ready while training runs (public API).

    A plugin that logs models calls it from its ``before`` hook, once training is about
    to start, with the flavor and requirements it will pass to `RunSink.log_model`::

        if call.options.log_models:
            autolog.warm_up_models("keras", requirements=("keras", "tensorflow"))

    The first ``save_model`` of a process otherwise spends seconds, at the end of the
    first training call, importing ``mlflow.<flavor>`` and pinning the requirements.
    This imports the flavor module on the caller's thread (the framework is loaded by
    then, so it costs milliseconds) and computes the pins in autolog's warm-up thread;
    the plugin holds no thread of its own. Idempotent and cheap after the first call,
    never raises (the real packaging reports problems), and does nothing where MLflow is
    not in use (the in-memory backend of `autolog.testing`).
    """
    warm_up(flavor, requirements)


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _signature(signature: Any) -> Any:
    if not isinstance(signature, Mapping):
        return signature
    from mlflow.models import ModelSignature

    as_json = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in signature.items()
        if value is not None
    }
    return ModelSignature.from_dict(as_json)


def _example(example: Any) -> Any:
    """An input example MLflow can save: arrays as numpy, DataFrames and dicts as they are."""
    if isinstance(example, Mapping):
        return {str(key): _example(value) for key, value in example.items()}
    if type(example).__module__.startswith("pandas"):
        return example
    import numpy as np

    return np.asarray(example)
