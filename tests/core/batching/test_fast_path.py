"""The store writers' fast paths: on only inside the MLflow versions CI tests, off by switch,
writing what the reference writer (MLflow's public client) writes; one writer per store."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from autolog.batching import BatchLogger, BatchPolicy, fast_path, stores
from autolog.batching.stores import choose
from tests.core.batching.helpers import AWKWARD_ROWS, history

ROOT = Path(__file__).resolve().parents[3]


def test_the_mlflows_ci_installs_are_inside_the_tested_range() -> None:
    """Both ends CI tests (the newest, every stack's pin; the lowest pyproject allows, the
    mlflow-lowest session's) are inside the range the fast paths are switched on in."""
    noxfile = (ROOT / "noxfile.py").read_text()
    pins = {
        name: Version(version)
        for name, version in re.findall(r'^(MLFLOW\w*) = "mlflow==([^"]+)"', noxfile, re.M)
    }
    assert set(pins) == {"MLFLOW", "MLFLOW_LOWEST"}, f"noxfile.py pins {pins}"
    for name, version in pins.items():
        assert version in fast_path.TESTED_MLFLOW, f"{name} {version} outside the tested range"
    assert fast_path.mlflow_version() in fast_path.TESTED_MLFLOW  # this environment's
    # The lowest pin is the floor pyproject.toml declares, wherever it is declared.
    pyproject = (ROOT / "pyproject.toml").read_text()
    floors = {Version(floor) for floor in re.findall(r'"mlflow>=([^",]+)', pyproject)}
    assert floors == {pins["MLFLOW_LOWEST"]}, f"pyproject.toml's floors: {floors}"
    newest = pins["MLFLOW"]
    tested = SpecifierSet(f">={pins['MLFLOW_LOWEST']},<{newest.major}.{newest.minor + 1}")
    assert tested == fast_path.TESTED_MLFLOW


def _log(client: MlflowClient) -> str:
    logger = BatchLogger.start_run(run_name="rows", client=client, tags={"team": "a"})
    for key, value, timestamp, step in AWKWARD_ROWS:
        logger.log_metric(key, value, step=step, timestamp=timestamp)
    logger.log_params({"lr": "0.1", "layers": "3"})
    logger.set_tags({"stage": "dev", "note": "é ✓"})
    logger.end_run("FAILED")
    run_id = logger.run_id
    assert run_id is not None
    return run_id


def _as_stored(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """What a user sees of the run, but what differs between any two runs."""
    run = client.get_run(run_id)
    tags = {k: v for k, v in run.data.tags.items() if k != "autolog.run_key"}
    return {
        "name": run.info.run_name,
        "status": run.info.status,
        "lifecycle_stage": run.info.lifecycle_stage,
        "ended": run.info.end_time is not None and run.info.end_time >= run.info.start_time,
        "params": run.data.params,
        "tags": tags,
        "latest": repr(sorted(run.data.metrics.items())),
        "history": {key: repr(history(client, run_id, key)) for key in ("loss", "acc")},
    }


def test_with_the_fast_path_off_the_reference_writer_leaves_the_same_run(
    tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch, spool_dir: Path
) -> None:
    """``AUTOLOG_FAST_PATH=0``: MLflow's public client writes, and the store holds what the
    fast path writes (params, tags, status, metric histories with NaN, infinities and a
    duplicate), the run's creation and end included."""
    seen = {}
    for switch, kind in (("1", "sql"), ("0", "client")):
        database = tmp_path / f"fast-{switch}.db"
        shutil.copy(empty_store, database)
        uri = f"sqlite:///{database}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("AUTOLOG_FAST_PATH", switch)
        client = MlflowClient(uri)
        assert fast_path.enabled() is (switch == "1")
        seen[switch] = _as_stored(client, _log(client))
        assert stores.writer_for(client).kind == kind  # the writer that wrote it
    assert seen["0"] == seen["1"]
    assert seen["1"]["params"] == {"lr": "0.1", "layers": "3"}
    assert seen["1"]["status"] == "FAILED" and seen["1"]["name"] == "rows"
    assert {"team": "a", "stage": "dev", "note": "é ✓"}.items() <= seen["1"]["tags"].items()


def test_the_writer_is_chosen_once_per_store(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[object] = []
    real = choose._choose

    def counting(client: MlflowClient) -> stores.StoreWriter:
        chosen.append(client)
        return real(client)

    monkeypatch.setattr(choose, "_choose", counting)
    for name in ("first", "second"):  # two runs, many requests, one store
        logger = BatchLogger.start_run(run_name=name)
        for step in range(3):
            logger.log_metric("loss", 1.0 / (step + 1), step=step)
            logger.send_pending()
        logger.log_param("lr", "0.1")
        logger.end_run()
    shared = stores.client_for(tracking_uri, BatchPolicy().request_timeout)
    assert chosen == [shared]
    writer = stores.writer_for(shared)
    assert writer.kind == "sql"
    # Switched off later: this store keeps its writer; a client made now gets the reference.
    monkeypatch.setenv("AUTOLOG_FAST_PATH", "0")
    assert stores.writer_for(shared) is writer
    assert stores.writer_for(MlflowClient(tracking_uri)).kind == "client"
    assert len(chosen) == 2


def test_with_the_fast_path_off_a_server_gets_mlflows_own_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No single-attempt store either: it replaces MLflow's internals (nothing is sent here)."""
    from mlflow.store.tracking.rest_store import RestStore

    monkeypatch.setenv("AUTOLOG_FAST_PATH", "0")
    client = stores.client_for("http://127.0.0.1:9/fast-path-off", 5.0)
    assert type(client._tracking_client.store) is RestStore
    assert stores.writer_for(client).kind == "client"
    monkeypatch.setenv("AUTOLOG_FAST_PATH", "1")
    bounded = stores.client_for("http://127.0.0.1:9/fast-path-on", 5.0)
    assert hasattr(bounded._tracking_client.store, "log_batch_rows")
    assert stores.writer_for(bounded).kind == "rest"
