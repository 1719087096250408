"""Every field of a run's state says which thread may touch it, in its annotation."""

from __future__ import annotations

import typing

from mlflow import MlflowClient

from autolog.batching.policy import BatchPolicy
from autolog.batching.state import Owner, RunState


def test_every_field_of_run_state_names_its_owner() -> None:
    run = RunState(
        run_id=None,
        create={"run_key": "k"},
        endpoint_key=("uri", "sqlite:///x.db", 30.0),
        make_client=lambda: MlflowClient("sqlite:///x.db"),
        tracking_uri="sqlite:///x.db",
        policy=BatchPolicy(),
    )
    hints = typing.get_type_hints(
        RunState, localns={"MlflowClient": MlflowClient}, include_extras=True
    )
    owners = {
        name: [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Owner)]
        for name, hint in hints.items()
    }
    fields = set(vars(run))
    assert sorted(fields - set(hints)) == [], "fields without a declared owner"
    assert sorted(set(hints) - fields) == [], "declared fields the state does not have"
    assert [name for name, found in owners.items() if len(found) != 1] == []
