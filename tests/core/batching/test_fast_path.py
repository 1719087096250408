"""The store writers' fast paths: on only inside the MLflow versions CI tests, off by switch."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient
from packaging.version import Version

from autolog.batching import BatchLogger, fast_path, sql_bulk
from tests.core.batching.helpers import AWKWARD_ROWS, history

ROOT = Path(__file__).resolve().parents[3]


def test_the_mlflow_ci_installs_is_inside_the_tested_range() -> None:
    pin = re.search(r'MLFLOW = "mlflow==([^"]+)"', (ROOT / "noxfile.py").read_text())
    assert pin, "noxfile.py pins no MLflow"
    assert Version(pin.group(1)) in fast_path.TESTED_MLFLOW
    assert fast_path.mlflow_version() in fast_path.TESTED_MLFLOW  # this environment's


def _log(client: MlflowClient) -> str:
    logger = BatchLogger.start_run(run_name="rows", client=client)
    for key, value, timestamp, step in AWKWARD_ROWS:
        logger.log_metric(key, value, step=step, timestamp=timestamp)
    logger.log_params({"lr": "0.1", "layers": "3"})
    logger.end_run()
    run_id = logger.run_id
    assert run_id is not None
    return run_id


def test_with_the_fast_path_off_the_store_holds_the_same_rows(
    tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch, spool_dir: Path
) -> None:
    """``AUTOLOG_FAST_PATH=0``: MLflow's public client writes, and the store holds what the
    fast path writes (NaN, infinities and a duplicate included)."""
    seen = {}
    for switch in ("1", "0"):
        database = tmp_path / f"fast-{switch}.db"
        shutil.copy(empty_store, database)
        uri = f"sqlite:///{database}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("AUTOLOG_FAST_PATH", switch)
        client = MlflowClient(uri)
        assert fast_path.enabled() is (switch == "1")
        assert (sql_bulk._writer_for(client) is not None) is (switch == "1")
        run = client.get_run(_log(client))
        assert run.info.status == "FINISHED"
        seen[switch] = {
            "params": run.data.params,
            "latest": repr(sorted(run.data.metrics.items())),
            "history": {
                key: repr(history(client, run.info.run_id, key)) for key in ("loss", "acc")
            },
        }
    assert seen["0"] == seen["1"]
    assert seen["1"]["params"] == {"lr": "0.1", "layers": "3"}
