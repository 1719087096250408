"""The spool: written when the store is unreachable, private, JSON only; sync is idempotent."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient

from autolog.batching import BatchLogger, transport
from autolog.batching.errors import Reporter
from autolog.batching.spool import SpoolFile, read_spool
from autolog.batching.sync import deliver, sync_spool
from tests.core.batching.helpers import CountingClient, history, spool_files


def _strict_json(line: str) -> object:
    def no_constants(name: str) -> object:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=no_constants)


@pytest.fixture
def unreachable_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An SQLite store that cannot be opened: a plain file stands where its folder goes."""
    (tmp_path / "later").write_text("not a directory")
    uri = f"sqlite:///{tmp_path / 'later' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def _log_offline(spool_dir: Path, *, values: int = 2500) -> str:
    with pytest.warns(match="spool"):
        logger = BatchLogger.start_run(
            run_name="offline", tags={"origin": "test"}, retry_timeout=0.2
        )
        for i in range(values):
            logger.log_metric(f"m{i % 5}", float(i), step=i)
        logger.log_metric("odd", float("nan"), step=0)
        logger.log_params({"lr": 0.01, "note": "x" * 10})
        logger.set_tag("phase", "train")
        logger.log_text("offline notes", "notes.txt")
        logger.end_run("FINISHED")
    assert logger.run_id is None  # never created
    return logger._state.local_id


def test_unreachable_store_spools_privately_as_json(
    unreachable_uri: str, spool_dir: Path, tmp_path: Path
) -> None:
    local_id = _log_offline(spool_dir)
    assert stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
    files = spool_files(spool_dir)
    assert [f.stem for f in files] == [local_id]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    records = [_strict_json(line) for line in files[0].read_text().splitlines()]
    assert records[0]["k"] == "header" and records[0]["create"]["run_name"] == "offline"
    assert {r["k"] for r in records[1:]} == {"batch", "artifact", "end"}
    contents = read_spool(files[0])
    assert contents.pending_values == 2500 + 1 + 2 + 1
    assert not contents.problems


def test_sync_creates_run_and_delivers_exactly_once(
    unreachable_uri: str, spool_dir: Path, tmp_path: Path
) -> None:
    _log_offline(spool_dir)
    (tmp_path / "later").unlink()  # the store comes back

    report = sync_spool(spool_dir, progress=False)
    assert report.ok and report.delivered_files == 1 and len(report.runs_created) == 1
    assert report.values == 2504 and report.artifacts == 1
    assert spool_files(spool_dir) == []
    assert sync_spool(spool_dir, progress=False).files == 0  # twice: nothing left

    client = MlflowClient(unreachable_uri)
    runs = client.search_runs(["0"], filter_string="attributes.run_name = 'offline'")
    assert len(runs) == 1
    run = runs[0]
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.01", "note": "x" * 10}
    assert run.data.tags["phase"] == "train" and run.data.tags["origin"] == "test"
    for k in range(5):
        assert history(client, run_id, f"m{k}") == [(i, float(i)) for i in range(k, 2500, 5)]
    assert [a.path for a in client.list_artifacts(run_id)] == ["notes.txt"]
    assert "Delivered 2504 value(s)" in str(report)


def test_sync_after_partial_delivery_and_lost_ack(
    unreachable_uri: str, spool_dir: Path, tmp_path: Path
) -> None:
    _log_offline(spool_dir)
    (tmp_path / "later").unlink()
    [path] = spool_files(spool_dir)
    real = MlflowClient(unreachable_uri)
    flaky = CountingClient(real, fail_after=2)  # the network drops after two requests
    spool = SpoolFile.open(path)
    retry = transport.Retry(
        timeout=0.1, initial_delay=0.01, max_delay=0.01, abort=threading.Event()
    )
    outcome = deliver(spool, flaky, retry, Reporter("test"))  # type: ignore[arg-type]
    spool.close()
    assert not outcome.complete and outcome.values == 2000
    # Simulate a crash between a delivery and its ack: forget the last ack.
    lines = path.read_text().splitlines()
    last_ack = max(i for i, line in enumerate(lines) if '"k":"ack"' in line)
    path.write_text("\n".join(lines[:last_ack] + lines[last_ack + 1 :]) + "\n")

    report = sync_spool(path, progress=False)
    assert report.ok and not report.runs_created  # the run was created by the first attempt
    assert sync_spool(spool_dir, progress=False).files == 0

    runs = real.search_runs(["0"], filter_string="attributes.run_name = 'offline'")
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    total = sum(len(history(real, run_id, f"m{k}")) for k in range(5))
    assert total == 2500
    assert runs[0].info.status == "FINISHED"


def test_sync_skips_files_in_use(unreachable_uri: str, spool_dir: Path) -> None:
    with pytest.warns(match="spool"):
        logger = BatchLogger.start_run(retry_timeout=0.2)
        logger.log_metric("m", 1.0)
        logger.flush()
    report = sync_spool(spool_dir, progress=False)
    assert report.skipped == 1 and report.delivered_files == 0
    assert len(spool_files(spool_dir)) == 1
    logger.close()
