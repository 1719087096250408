"""Creating a run exactly once, even when the request is retried or replayed from the spool.

A run started through the batching layer carries a ``autolog.run_key`` tag, a random id
chosen when the caller asked for the run. Before (re)trying a creation whose earlier
attempt may have reached the store, and always when ``autolog sync`` creates a spooled
run, the experiment is searched for that key first: a timed-out request that did create
the run, or a sync run twice, finds it instead of making a second one.

The experiment is chosen the way MLflow's fluent API chooses it, from what the caller's
thread saw when the run was requested: an explicit id, the experiment set with
``mlflow.set_experiment``, ``MLFLOW_EXPERIMENT_NAME``, ``MLFLOW_EXPERIMENT_ID``, else
MLflow's default experiment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from autolog.batching.stores import StoreWriter

__all__ = ["RUN_KEY_TAG", "create_spec", "ensure_run", "find_run"]

RUN_KEY_TAG: Final = "autolog.run_key"


def create_spec(
    *,
    run_key: str,
    experiment_id: str | None,
    run_name: str | None,
    tags: Mapping[str, str],
    start_time: int,
) -> dict[str, Any]:
    """Everything needed to create the run later, captured on the caller's thread (no I/O)."""
    experiment_name = None
    if experiment_id is None:
        try:
            from mlflow.tracking import fluent

            active = getattr(fluent, "_active_experiment_id", None)
        except Exception:
            active = None
        if active:
            experiment_id = str(active)
        elif os.environ.get("MLFLOW_EXPERIMENT_NAME"):
            experiment_name = os.environ["MLFLOW_EXPERIMENT_NAME"]
        elif os.environ.get("MLFLOW_EXPERIMENT_ID"):
            experiment_id = os.environ["MLFLOW_EXPERIMENT_ID"]
    return {
        "run_key": run_key,
        "experiment_id": experiment_id,
        "experiment_name": experiment_name,
        "run_name": run_name,
        "tags": dict(tags),
        "start_time": start_time,
    }


def resolve_experiment(client: MlflowClient, spec: Mapping[str, Any]) -> str:
    if spec.get("experiment_id"):
        return str(spec["experiment_id"])
    name = spec.get("experiment_name")
    if name:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(client.create_experiment(name))
        except Exception:
            # Another process may have created it in the meantime.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)
    from mlflow.tracking.default_experiment import registry

    return str(registry.get_experiment_id() or "0")


def find_run(client: MlflowClient, experiment_id: str, run_key: str) -> str | None:
    from mlflow.entities import ViewType

    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'",
        run_view_type=ViewType.ALL,
        max_results=1,
    )
    return str(runs[0].info.run_id) if runs else None


class RunNotCreatedYet(ConnectionError):
    """A run to join (``spec["join"]``) is not in the store yet: try again later."""


def ensure_run(writer: StoreWriter, spec: Mapping[str, Any], *, search_first: bool) -> str:
    """The id of the run ``spec`` describes, creating it through ``writer`` if it does not
    exist yet.

    A spec with ``"join": True`` (a process forked while its parent was creating the run)
    only finds the run: it raises `RunNotCreatedYet`, which is retried, until the run
    that another process creates is there.
    """
    client = writer.client
    experiment_id = resolve_experiment(client, spec)
    if search_first or spec.get("join"):
        found = find_run(client, experiment_id, spec["run_key"])
        if found is not None:
            return found
        if spec.get("join"):
            raise RunNotCreatedYet(f"run {spec['run_key']} is not in the store yet")
    tags = {**spec.get("tags", {}), RUN_KEY_TAG: spec["run_key"]}
    return writer.create_run(
        experiment_id, start_time=spec.get("start_time"), tags=tags, run_name=spec.get("run_name")
    )
