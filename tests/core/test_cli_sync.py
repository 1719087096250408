"""``autolog sync`` as a user runs it: real spool files, a real SQLite store, exit codes.

The spool is made the way it is made in real life: a BatchLogger whose tracking store
(an HTTP server on a closed port) cannot be reached.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from autolog.batching import BatchLogger
from autolog.batching.sync import pending_files, sync_spool


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store with MLflow's schema, made once (migrations take seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    # The default experiment's artifact location is ./mlruns of the folder it is made in.
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        MlflowClient(f"sqlite:///{path}").search_experiments()
    finally:
        os.chdir(here)
    return path


@pytest.fixture
def store(tmp_path: Path, empty_store: Path) -> str:
    target = tmp_path / "store" / "mlflow.db"
    target.parent.mkdir()
    target.write_bytes(empty_store.read_bytes())
    return f"sqlite:///{target}"


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A spool dir holding two runs logged while their store was down, and that store."""
    import mlflow

    spool_dir = tmp_path / "spool"
    down = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(spool_dir))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(down)
    try:
        for name in ("first", "second"):
            with pytest.warns(match="spool"):
                logger = BatchLogger.start_run(run_name=name, retry_timeout=0.2)
                for step in range(10):
                    logger.log_metric("loss", 1.0 / (step + 1), step=step)
                logger.log_params({"lr": 0.01})
                logger.log_text("notes", "notes.txt")
                logger.end_run("FINISHED")
    finally:
        mlflow.set_tracking_uri(previous)
        from autolog.batching.flusher import ENGINE

        with ENGINE.lock:  # spooled on purpose: not for the exit summary
            ENGINE.left_in_spool.clear()
    assert len(list(spool_dir.glob("*.jsonl"))) == 2
    yield spool_dir, down


def autolog_sync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autolog", "sync", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=300,
    )


def test_a_spool_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    result = autolog_sync(str(tmp_path / "does-not-exist"))
    assert result.returncode == 2
    assert "does-not-exist" in result.stderr and "does not exist" in result.stderr
    assert "Nothing to sync" not in result.stdout


def test_dry_run_lists_each_file_and_sends_nothing(spool: tuple[Path, str], store: str) -> None:
    spool_dir, down = spool
    result = autolog_sync("--dry-run", str(spool_dir))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for file in sorted(spool_dir.glob("*.jsonl")):
        assert str(file) in out
    assert out.count(f"  store:    {down}") == 2
    assert "  run:      'first' (created when delivered)" in out
    assert "  run:      'second' (created when delivered)" in out
    assert out.count("  pending:  11 value(s), 1 artifact(s), run end (FINISHED)") == 2
    assert out.rstrip().endswith(
        f"2 spool file(s): 22 value(s) and 2 artifact(s) would be delivered to {down}. "
        "Nothing was sent (--dry-run)."
    )
    assert len(list(spool_dir.glob("*.jsonl"))) == 2

    redirected = autolog_sync("--dry-run", "--tracking-uri", store, str(spool_dir))
    assert redirected.stdout.count(f"  store:    {store}") == 2


def test_sync_to_another_store_says_where_it_wrote(spool: tuple[Path, str], store: str) -> None:
    spool_dir, _ = spool
    result = autolog_sync("--no-progress", "--tracking-uri", store, str(spool_dir))
    assert result.returncode == 0, result.stderr
    assert "Delivered 22 value(s) and 2 artifact(s) from 2 of 2 spool file(s)" in result.stdout
    assert f"Tracking store(s) written to: {store}" in result.stdout
    assert not list(spool_dir.glob("*.jsonl"))
    client = MlflowClient(store)
    runs = client.search_runs(["0"])
    assert sorted(r.info.run_name for r in runs) == ["first", "second"]
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.01"}
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 10
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["notes.txt"]


def test_sync_to_a_store_still_down_exits_1_and_keeps_the_files(spool: tuple[Path, str]) -> None:
    spool_dir, _ = spool
    result = autolog_sync("--no-progress", str(spool_dir))
    assert result.returncode == 1
    assert "2 file(s) were kept for a later sync." in result.stdout
    assert "written to" not in result.stdout
    assert len(list(spool_dir.glob("*.jsonl"))) == 2


def test_progress_counts_values_and_artifacts(spool: tuple[Path, str], store: str) -> None:
    spool_dir, _ = spool
    listed = pending_files(spool_dir, tracking_uri=store)
    total = sum(f.values + f.artifacts for f in listed)
    assert total == 24
    advanced: list[int] = []
    report = sync_spool(spool_dir, tracking_uri=store, on_progress=advanced.append)
    assert report.ok and report.stores == [store]
    assert sum(advanced) == total == report.values + report.artifacts


def test_the_progress_bar_on_a_terminal_counts_values_and_artifacts(
    spool: tuple[Path, str], store: str
) -> None:
    import pty

    spool_dir, _ = spool
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "autolog", "sync", "--tracking-uri", store, str(spool_dir)],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80", "TERM": "xterm"},
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal is gone: the process ended
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    text = output.decode("utf-8", "replace")
    assert "autolog sync" in text and "24/24" in text and "values and artifacts" in text
    assert "Delivered 22 value(s) and 2 artifact(s)" in text
