"""Process lifecycle: exiting or being terminated with data pending, and forking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from mlflow import MlflowClient

from autolog.batching.sync import sync_spool
from tests.core.batching.helpers import history, spool_files
from tests.support import agents
from tests.support.mlflow_server import free_port

SCRIPT = """
import os, signal, sys, time
from autolog.batching import BatchLogger

logger = BatchLogger.start_run(run_name="exiting", retry_timeout=0.5, exit_timeout=5)
for i in range(1000):
    logger.log_metric("m", float(i), step=i)
logger.log_param("p", "v")
print("RUN", logger.wait_for_run(timeout=20), flush=True)
from autolog.batching import agent
print("AGENT", agent.AGENT.pid, flush=True)
if sys.argv[1] == "sigterm":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)
    print("SIGTERM was swallowed", flush=True)
"""


def _run(tmp_path: Path, uri: str, mode: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = agents.child_env(
        **{
            "MLFLOW_TRACKING_URI": uri,
            "AUTOLOG_SPOOL_DIR": str(tmp_path / "spool"),
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            **extra_env,
        }
    )
    return subprocess.run(
        [sys.executable, str(script), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _summary_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "deliver them with: autolog sync" in line]


def _sync_creates_the_whole_run(spool: Path, tmp_path: Path, empty_store: Path) -> None:
    """``autolog sync`` of ``spool`` into a new store creates SCRIPT's run with all of it."""
    store = tmp_path / "store.db"
    store.write_bytes(empty_store.read_bytes())
    uri = f"sqlite:///{store}"
    report = sync_spool(spool, progress=False, tracking_uri=uri)
    assert report.ok and len(report.runs_created) == 1
    client = MlflowClient(uri)
    run = client.get_run(report.runs_created[0])
    assert run.info.run_name == "exiting" and run.data.params == {"p": "v"}
    assert history(client, run.info.run_id, "m") == [(i, float(i)) for i in range(1000)]


def test_exit_with_store_down_spools_and_says_so_once(tmp_path: Path, empty_store: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = _run(tmp_path, dead, "exit")
    assert result.returncode == 0, result.stderr
    [line] = _summary_lines(result.stderr)
    spool = tmp_path / "spool"
    assert line.startswith("autolog: 1001 logged value(s)")
    assert line.endswith(f"autolog sync {spool}")
    assert len(spool_files(spool)) == 1

    # Deliver to another store; the run, never created, is created there.
    _sync_creates_the_whole_run(spool, tmp_path, empty_store)


def test_a_spool_dir_that_cannot_be_written_gives_way_to_a_private_temp_folder(
    tmp_path: Path, empty_store: Path
) -> None:
    (tmp_path / "blocker").write_text("a file where the spool dir should be")
    temp = tmp_path / "tmp"
    temp.mkdir()
    dead = f"http://127.0.0.1:{free_port()}"
    result = _run(
        tmp_path,
        dead,
        "exit",
        AUTOLOG_SPOOL_DIR=str(tmp_path / "blocker" / "spool"),
        TMPDIR=str(temp),
    )
    assert result.returncode == 0, result.stderr
    fallback = temp / f"autolog-spool-{os.getuid()}"
    assert f"it goes to {fallback} instead" in result.stderr
    [line] = _summary_lines(result.stderr)
    assert line.startswith("autolog: 1001 logged value(s)")
    assert line.endswith(f"autolog sync {fallback}")
    assert fallback.stat().st_mode & 0o777 == 0o700

    _sync_creates_the_whole_run(fallback, tmp_path, empty_store)


def test_what_neither_the_store_nor_the_spool_took_is_counted_at_exit(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the spool dir should be")
    temp = tmp_path / "tmp"
    temp.mkdir()
    # Not a folder of ours: the fallback must not write into it.
    (temp / f"autolog-spool-{os.getuid()}").write_text("someone else's")
    dead = f"http://127.0.0.1:{free_port()}"
    spool = tmp_path / "blocker" / "spool"
    result = _run(tmp_path, dead, "exit", AUTOLOG_SPOOL_DIR=str(spool), TMPDIR=str(temp))
    assert result.returncode == 0, result.stderr
    assert not _summary_lines(result.stderr)
    [line] = [line for line in result.stderr.splitlines() if "were lost" in line]
    assert line.startswith("autolog: 1001 logged value(s) were lost")
    assert f"nor the spool in {spool} (NotADirectoryError" in line


def test_exit_delivers_pending_data(tmp_path: Path, empty_store: Path) -> None:
    store = tmp_path / "store.db"
    store.write_bytes(empty_store.read_bytes())
    uri = f"sqlite:///{store}"
    result = _run(tmp_path, uri, "exit")
    assert result.returncode == 0, result.stderr
    assert _summary_lines(result.stderr) == []
    run_id = result.stdout.split("RUN ")[1].split()[0]
    client = MlflowClient(uri)
    assert len(history(client, run_id, "m")) == 1000
    assert client.get_run(run_id).data.params == {"p": "v"}


def test_an_unhandled_sigterm_ends_the_process_and_the_agent_delivers_its_run(
    tmp_path: Path, empty_store: Path
) -> None:
    """autolog installs no SIGTERM handler: the default action ends the process at once,
    and the delivery agent delivers what it logged and ends its run KILLED."""
    store = tmp_path / "store.db"
    store.write_bytes(empty_store.read_bytes())
    uri = f"sqlite:///{store}"
    result = _run(tmp_path, uri, "sigterm", AUTOLOG_AGENT="1")
    pid = agents.agent_pid(result.stdout)
    try:
        assert result.returncode == -signal.SIGTERM, (result.returncode, result.stderr)
        assert "swallowed" not in result.stdout
        assert agents.wait_gone(pid, 30), "the agent did not finish within 30 s"
    finally:
        agents.stop(pid)
    run_id = result.stdout.split("RUN ")[1].split()[0]
    client = MlflowClient(uri)
    assert len(history(client, run_id, "m")) == 1000
    run = client.get_run(run_id)
    assert run.data.params == {"p": "v"}
    assert run.info.status == "KILLED" and run.info.end_time
    assert spool_files(tmp_path / "spool") == []


FORK_SCRIPT = """
import os
from autolog.batching import BatchLogger

logger = BatchLogger.start_run(run_name="fork")
logger.log_metric("before", 1.0)
logger.flush()
pid = os.fork()
if pid == 0:  # the child's threads start afresh and log into the same run
    logger.log_metric("child", 2.0)
    logger.flush()
    os._exit(0)
_, status = os.waitpid(pid, 0)
logger.log_metric("parent", 3.0)
logger.close()
print("RUN", logger.run_id, status)
"""


def test_fork_child_gets_its_own_flusher(tmp_path: Path, empty_store: Path) -> None:
    store = tmp_path / "store.db"
    store.write_bytes(empty_store.read_bytes())
    uri = f"sqlite:///{store}"
    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT)
    env = agents.child_env(
        **{
            "MLFLOW_TRACKING_URI": uri,
            "AUTOLOG_SPOOL_DIR": str(tmp_path / "spool"),
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
    )
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    run_id, status = result.stdout.split("RUN ")[1].split()
    assert status == "0"
    metrics = MlflowClient(uri).get_run(run_id).data.metrics
    assert metrics == {"before": 1.0, "child": 2.0, "parent": 3.0}


FULL_DISK = """
import resource, signal, sys, time
from autolog.batching import BatchLogger

# The disk fills up mid-run: files may not grow past this size (SIGXFSZ ignored, so a
# write past it fails with EFBIG, as one on a full disk fails with ENOSPC).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
logger = BatchLogger.start_run(run_name="full disk", retry_timeout=0.5, exit_timeout=2)
for i in range(3000):
    logger.log_metric("m", float(i), step=i)
    if i % 500 == 499:
        time.sleep(0.1)  # several appends to the run log
"""


def test_a_full_disk_is_counted_exactly(tmp_path: Path, empty_store: Path) -> None:
    """The run log fills the disk half way while the store is down: the exit lines count
    what waits in the log and what was lost, which add up to what was logged, and `autolog
    sync` delivers exactly what the first line counts."""
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    dead = f"http://127.0.0.1:{free_port()}"
    env = agents.child_env(
        **{
            "MLFLOW_TRACKING_URI": dead,
            "AUTOLOG_SPOOL_DIR": str(tmp_path / "spool"),
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
    )
    result = subprocess.run(
        [sys.executable, str(script), "40000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [waiting] = _summary_lines(result.stderr)
    [lost] = [line for line in result.stderr.splitlines() if "were lost" in line]
    kept = int(waiting.split("autolog: ")[1].split()[0])
    gone = int(lost.split("autolog: ")[1].split()[0])
    assert kept + gone == 3000 and kept > 0 and gone > 0, (kept, gone)

    store = tmp_path / "store.db"
    store.write_bytes(empty_store.read_bytes())
    uri = f"sqlite:///{store}"
    report = sync_spool(tmp_path / "spool", progress=False, tracking_uri=uri)
    assert report.ok and report.values == kept, str(report)
    [run_id] = report.runs_created
    steps = [step for step, _ in history(MlflowClient(uri), run_id, "m")]
    assert steps == list(range(kept))
