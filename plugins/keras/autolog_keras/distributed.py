"""Multi-worker training: which process writes, and how many workers the job has.

``tf.distribute.MultiWorkerMirroredStrategy`` (and the parameter-server strategy) learn the
cluster from the ``TF_CONFIG`` environment variable. Reading that JSON ourselves answers
"am I the chief?" without importing TensorFlow: the task of type ``chief``, or worker 0
when the cluster has no chief. Every other task (other workers, parameter servers, the
evaluator) trains without logging, so the job makes one run.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = [
    "TF_CONFIG",
    "cluster_params",
    "is_chief",
    "local_weights",
    "needs_local_snapshot",
    "parse_tf_config",
    "worker_count",
]

TF_CONFIG = "TF_CONFIG"


def parse_tf_config(raw: str | None = None) -> Mapping[str, Any]:
    """The parsed ``TF_CONFIG`` (``{}`` when unset, empty or not a JSON object)."""
    if raw is None:
        raw = os.environ.get(TF_CONFIG, "")
    return _parse(raw)


@functools.lru_cache(maxsize=8)
def _parse(raw: str) -> Mapping[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def is_chief(config: Mapping[str, Any] | None = None) -> bool:
    """Whether this process is the one that writes (always true outside a cluster)."""
    config = parse_tf_config() if config is None else config
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    if not cluster or not task:
        return True
    kind = str(task.get("type", "")).lower()
    index = int(task.get("index", 0) or 0)
    if kind == "chief":
        return True
    if kind in ("worker", "master"):
        return "chief" not in cluster and "master" not in cluster and index == 0
    return False


def worker_count(config: Mapping[str, Any] | None = None) -> int | None:
    """Chief plus workers in the cluster, or ``None`` outside a cluster."""
    config = parse_tf_config() if config is None else config
    cluster = config.get("cluster") or {}
    if not cluster:
        return None
    return sum(len(cluster.get(kind) or ()) for kind in ("chief", "master", "worker"))


def cluster_params(model: Any) -> dict[str, Any]:
    """``num_workers`` under TF_CONFIG, and the model's distribution strategy if any."""
    params: dict[str, Any] = {}
    workers = worker_count()
    if workers is not None:
        params["num_workers"] = workers
    strategy = getattr(model, "distribute_strategy", None)
    name = type(strategy).__name__ if strategy is not None else ""
    if strategy is not None and "Default" not in name:
        params["distribute_strategy"] = name
        replicas = getattr(strategy, "num_replicas_in_sync", None)
        if isinstance(replicas, int):
            params["num_replicas_in_sync"] = replicas
    return params


def needs_local_snapshot(model: Any) -> bool:
    """Whether ``model.save`` would wait for the other workers.

    Under a multi-worker strategy, saving reads synchronized variables (metric totals,
    batch-norm statistics) through collective ops that every worker must join, but only
    the chief runs autolog's hooks. Such a model is snapshotted from its local weights.
    """
    workers = worker_count()
    if workers is None or workers < 2:
        return False
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is not None and "Default" not in type(strategy).__name__


def local_weights(model: Any) -> list[Any]:
    """This worker's copy of every weight, in ``model.weights`` order, without collectives."""
    import numpy as np

    strategy = model.distribute_strategy
    values = []
    for weight in model.weights:
        backing = getattr(weight, "value", weight)  # Keras 3 wraps the tf.Variable
        if callable(backing):
            backing = weight
        local = strategy.experimental_local_results(backing)[0]
        values.append(np.asarray(local.numpy() if hasattr(local, "numpy") else local))
    return values
