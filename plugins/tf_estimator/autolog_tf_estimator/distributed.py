"""Which process of a distributed Estimator job writes to MLflow: the chief, and only it.

Estimator jobs describe their cluster in the ``TF_CONFIG`` environment variable. Reading it
here, rather than asking TensorFlow, keeps the decision free of imports and identical to
what ``RunConfig`` derives: the ``chief`` (or legacy ``master``) task is the chief; with no
chief in the cluster, worker 0 is; evaluators and parameter servers never are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["is_chief"]

_CHIEF_TYPES = frozenset({"chief", "master"})


def is_chief(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process should log, judged from ``TF_CONFIG`` in ``environ``."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not raw.strip():
        return True
    try:
        config: Any = json.loads(raw)
    except ValueError:
        # TensorFlow itself rejects a malformed TF_CONFIG; autolog must not be the one
        # that decides the job is distributed.
        return True
    if not isinstance(config, Mapping):
        return True
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    if not isinstance(cluster, Mapping) or not isinstance(task, Mapping) or not cluster:
        return True  # no cluster: a local job, which RunConfig treats as the chief
    task_type = str(task.get("type", "")).lower()
    if task_type in _CHIEF_TYPES:
        return True
    if task_type == "worker":
        has_chief = any(name in cluster for name in _CHIEF_TYPES)
        return not has_chief and _index(task) == 0
    return False


def _index(task: Mapping[str, Any]) -> int:
    try:
        return int(task.get("index", 0))
    except (TypeError, ValueError):
        return -1
