"""The spool: written when the store is unreachable, private, JSON only; sync is idempotent."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from autolog.batching import BatchLogger, spool, transport
from autolog.batching.errors import Reporter
from autolog.batching.spool import SpoolFile, read_spool
from autolog.batching.sync import SyncReport, deliver, sync_spool
from autolog.cli import main
from autolog.safety import AutologWarning
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


def _store_comes_back(tmp_path: Path, empty_store: Path) -> None:
    (tmp_path / "later").unlink()
    (tmp_path / "later").mkdir()
    shutil.copy(empty_store, tmp_path / "later" / "mlflow.db")  # migrated already: faster


def _two_offline_runs_then_the_store_is_back(
    spool_dir: Path, tmp_path: Path, empty_store: Path
) -> None:
    _log_offline(spool_dir, values=500)
    _log_offline(spool_dir, values=500)
    _store_comes_back(tmp_path, empty_store)


def _offline_runs_hold_every_value_once(uri: str, runs: int, values: int) -> None:
    client = MlflowClient(uri)
    found = client.search_runs(["0"], filter_string="attributes.run_name = 'offline'")
    assert len(found) == runs
    for run in found:
        assert run.info.status == "FINISHED"
        assert run.data.params == {"lr": "0.01", "note": "x" * 10}
        for k in range(5):
            expected = [(i, float(i)) for i in range(k, values, 5)]
            assert history(client, run.info.run_id, f"m{k}") == expected


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
    # The text artifact the store could not take is kept beside the log ("kept" says where).
    assert {r["k"] for r in records[1:]} == {"batch", "artifact", "kept", "end"}
    [kept] = [r for r in records if r["k"] == "kept"]
    copy = files[0].parent / kept["file"]
    assert copy.read_text() == "offline notes" and stat.S_IMODE(copy.stat().st_mode) == 0o600
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
    # Simulate a crash between a delivery and its ack: forget the last ack (a record is
    # acked once all of its values are in, so a record bigger than the two requests that
    # went through has none yet).
    lines = path.read_text().splitlines()
    acks = [i for i, line in enumerate(lines) if '"k":"ack"' in line]
    if acks:
        lines = lines[: acks[-1]] + lines[acks[-1] + 1 :]
    path.write_text("\n".join(lines) + "\n")

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
    assert report.ok  # nothing for the user to do: the training is still running
    in_use = "in use by another process (a training still writing it, or another sync)"
    assert f"1 file(s) are {in_use}." in str(report)
    assert f"{spool_files(spool_dir)[0].name}: {in_use}; skipped" in str(report)
    assert len(spool_files(spool_dir)) == 1
    logger.close()


@pytest.fixture
def undeletable(spool_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Files in ``spool_dir`` can be written but not removed (a dir the user may not write).

    As root, a read-only dir does not stop ``unlink``, so the refusal is simulated.
    """
    if os.geteuid() != 0:
        spool_dir.chmod(0o500)
        yield
        spool_dir.chmod(0o700)
        return
    real_unlink = Path.unlink

    def refuse(self: Path, missing_ok: bool = False) -> None:
        if self.parent == spool_dir:
            raise PermissionError(13, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", refuse)
        yield


def test_sync_reports_delivered_files_it_cannot_remove_and_goes_on(
    unreachable_uri: str,
    spool_dir: Path,
    tmp_path: Path,
    empty_store: Path,
    request: pytest.FixtureRequest,
) -> None:
    _two_offline_runs_then_the_store_is_back(spool_dir, tmp_path, empty_store)
    names = [f.name for f in spool_files(spool_dir)]

    request.getfixturevalue("undeletable")
    result = CliRunner().invoke(main, ["sync", "--no-progress", str(spool_dir)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1, result.output  # the user has files to remove
    assert "Delivered 1008 value(s) and 2 artifact(s) from 2 of 2 spool file(s)" in result.output
    assert "2 delivered file(s) could not be removed." in result.output
    assert "kept for a later sync" not in result.output
    for name in names:
        assert (
            f"{name}: delivered, but could not remove it (Permission denied); remove it by hand"
            in result.output
        )
    _offline_runs_hold_every_value_once(unreachable_uri, runs=2, values=500)

    again = sync_spool(spool_dir, progress=False)  # fully acked: nothing is sent twice
    assert again.values == 0 and again.artifacts == 0 and not again.runs_created
    assert again.delivered_files == 2 and again.not_removed == 2 and not again.ok
    _offline_runs_hold_every_value_once(unreachable_uri, runs=2, values=500)
    assert [f.name for f in spool_files(spool_dir)] == names


def test_sync_skips_malformed_records_and_delivers_the_rest(
    unreachable_uri: str, spool_dir: Path, tmp_path: Path, empty_store: Path
) -> None:
    _log_offline(spool_dir, values=500)
    _store_comes_back(tmp_path, empty_store)
    [path] = spool_files(spool_dir)
    lines = path.read_text().splitlines()
    malformed = [
        '{"k":"batch"}',
        '{"k":"batch","n":"x","m":[],"p":[],"t":[]}',
        '{"k":"batch","n":90,"p":[],"t":[]}',
        '{"k":"batch","n":91,"m":[["m0","x",1,2]],"p":[],"t":[]}',
        '{"k":"batch","n":92,"m":[],"p":[["lr"]],"t":[]}',
        '{"k":"ack","n":"x"}',
        '{"k":"artifact","n":93}',
        '{"k":"artifact","n":96,"file":"/etc/passwd","artifact_path":null}',
        '{"k":"artifact","n":97,"file":"../../secret.txt","artifact_path":null}',
        '{"k":"end","n":94,"status":"FAILED"}',
        '{"k":"run","run_id":5}',
        '{"n":95}',
        "[1,2]",
    ]
    path.write_text("\n".join(lines[:1] + malformed + lines[1:]) + "\n")

    contents = read_spool(path)
    assert [p.split(": ")[0] for p in contents.problems] == [
        f"{path.name}:{n}" for n in range(2, 2 + len(malformed))
    ]
    assert all(p.endswith("skipped") and "not a spool record" in p for p in contents.problems)
    assert f"{path.name}:4: not a spool record (no list 'm'), skipped" in contents.problems
    assert contents.pending_values == 500 + 1 + 2 + 1

    with pytest.warns(AutologWarning) as caught:
        report = sync_spool(spool_dir, progress=False)
    assert sorted(str(w.message).split(": ", 2)[-1] for w in caught) == sorted(contents.problems)
    assert report.ok and report.delivered_files == 1 and report.values == 504
    _offline_runs_hold_every_value_once(unreachable_uri, runs=1, values=500)
    assert spool_files(spool_dir) == []


def test_sync_leaves_a_file_another_sync_is_delivering(
    unreachable_uri: str, spool_dir: Path, tmp_path: Path, empty_store: Path
) -> None:
    _two_offline_runs_then_the_store_is_back(spool_dir, tmp_path, empty_store)
    busy, _ = spool_files(spool_dir)

    holder = SpoolFile.open(busy)  # the other sync, delivering this file right now
    report = sync_spool(spool_dir, progress=False)
    assert report.ok and report.skipped == 1 and report.delivered_files == 1
    in_use = "in use by another process (a training still writing it, or another sync)"
    assert f"{busy.name}: {in_use}; skipped" in str(report)
    assert spool_files(spool_dir) == [busy]
    holder.close()

    assert sync_spool(spool_dir, progress=False).delivered_files == 1
    _offline_runs_hold_every_value_once(unreachable_uri, runs=2, values=500)


def test_two_syncs_at_once_deliver_each_file_once(
    unreachable_uri: str,
    spool_dir: Path,
    tmp_path: Path,
    empty_store: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _two_offline_runs_then_the_store_is_back(spool_dir, tmp_path, empty_store)
    # The other sync wins the race for both files. It runs between our open() of the
    # first file and our lock on it: the first is then an unlinked file under our
    # descriptor, and the second is gone before we open it.
    other: list[SyncReport] = []
    real_fcntl = spool.fcntl

    def flock_after_the_other_sync(fd: int, operation: int) -> None:
        monkeypatch.setattr(spool, "fcntl", real_fcntl)
        other.append(sync_spool(spool_dir, progress=False))
        real_fcntl.flock(fd, operation)

    racing = types.SimpleNamespace(
        flock=flock_after_the_other_sync, LOCK_EX=real_fcntl.LOCK_EX, LOCK_NB=real_fcntl.LOCK_NB
    )
    monkeypatch.setattr(spool, "fcntl", racing)
    report = sync_spool(spool_dir, progress=False)

    [winner] = other
    assert winner.delivered_files == 2 and winner.values == 1008
    assert report.ok and report.files == 2 and report.delivered_elsewhere == 2
    assert report.delivered_files == 0 and report.values == 0 and not report.problems
    assert "2 file(s) were delivered by another sync." in str(report)
    assert spool_files(spool_dir) == []
    _offline_runs_hold_every_value_once(unreachable_uri, runs=2, values=500)


def test_a_run_whose_replayed_spool_cannot_be_removed_carries_on(
    unreachable_uri: str,
    spool_dir: Path,
    tmp_path: Path,
    empty_store: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = BatchLogger.start_run(retry_timeout=0.2)
        for i in range(100):
            logger.log_metric("m", float(i), step=i)
        logger.flush()  # the store is down: all of it is in the spool
        [path] = spool_files(spool_dir)
        _store_comes_back(tmp_path, empty_store)
        unlink = Path.unlink

        def refuse(self: Path, missing_ok: bool = False) -> None:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            unlink(self, missing_ok=missing_ok)

        monkeypatch.setattr(Path, "unlink", refuse)
        for i in range(100, 200):
            logger.log_metric("m", float(i), step=i)
        logger.end_run()  # delivers the spool first, then what came after
    assert not logger._state.errors
    client = MlflowClient(unreachable_uri)
    assert client.get_run(logger.run_id).info.status == "FINISHED"
    assert history(client, logger.run_id, "m") == [(i, float(i)) for i in range(200)]
    assert any("could not remove it" in str(w.message) for w in caught)
    monkeypatch.undo()
    report = sync_spool(spool_dir, progress=False)  # fully acked: nothing is sent twice
    assert report.ok and report.values == 0 and spool_files(spool_dir) == []
    assert len(client.get_metric_history(logger.run_id, "m")) == 200


def test_a_logger_joining_a_run_not_created_yet_logs_beside_it(
    unreachable_uri: str, spool_dir: Path, tmp_path: Path
) -> None:
    """`BatchLogger.same_run` of a run the store has not created (it is down): the two
    loggers write logs of their own (the second once waited forever for the first's lock,
    and with it every run of the process); once the store is back, sync makes one run."""
    with pytest.warns(match="spool"):
        first = BatchLogger.start_run(run_name="joined", retry_timeout=0.2)
        first.log_metric("fit", 1.0, step=0)
        second = BatchLogger.same_run(first)
        second.log_metric("evaluate", 2.0, step=0)
        began = time.monotonic()
        first.end_run(timeout=5)
        second.close(timeout=5)
        assert time.monotonic() - began < 15
    assert len(spool_files(spool_dir)) == 2
    (tmp_path / "later").unlink()
    report = sync_spool(spool_dir, progress=False)
    assert report.ok, str(report)
    client = MlflowClient(unreachable_uri)
    [run] = client.search_runs(["0"])
    assert run.data.metrics == {"fit": 1.0, "evaluate": 2.0}
    assert run.info.status == "FINISHED"
