"""A training process that dies keeps what it logged: the delivery agent delivers its run log.

Each case runs a real per-step Keras fit (10 epochs of 300 steps) in a process of its own,
with the delivery agent on, into a fresh SQLite store or a real ``mlflow server``, and
ends it after epoch 5 the way trainings end in real life: SIGKILL (an OOM kill, a
preempted node), ``os._exit(1)`` (a crashing extension), or a SIGTERM the script handles
(note it, finish the next epoch, exit 0). No ``autolog sync`` runs: within 20 s the store
must hold the steps logged before the fault (all of them when the script ended itself),
each once, and the run must be ended by itself: KILLED, or FINISHED for the handled
SIGTERM, with an end time.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support import agents
from tests.support.mlflow_server import MlflowServer

STEPS_PER_EPOCH = 300
EPOCHS = 10
FAULT_AFTER_EPOCH = 5
DELIVERY_DEADLINE = 20.0  # seconds from the process's end to the run complete in the store

TRAIN = """
import os, signal, sys, time

import numpy as np
import autolog
from autolog.batching import agent

mode = sys.argv[1]
autolog.autolog(frameworks=["keras"], log_every_n_steps=1, log_models=False)
import keras

stop_requested = []
if mode == "sigterm":
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))

rng = np.random.default_rng(0)
x = rng.normal(size=({steps} * 32, 20)).astype("float32")
y = (x.sum(axis=1) > 0).astype("int64")
model = keras.Sequential(
    [keras.Input((20,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)]
)
model.compile(
    optimizer="adam",
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
)


class Fault(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        print(f"EPOCH {{done}} STEPS {{done * {steps}}} AGENT {{agent.AGENT.pid}}", flush=True)
        if stop_requested:
            self.model.stop_training = True  # the handled SIGTERM: end after this epoch
        if done == {fault_after}:
            if mode == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif mode == "exit":
                os._exit(1)
            elif mode == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would send it


model.fit(x, y, epochs={epochs}, batch_size=32, verbose=0, callbacks=[Fault()])
print("FIT RETURNED", flush=True)
"""


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store with MLflow's schema, made once (migrations take seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(params=["sqlite", "server"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, empty_store: Path
) -> Iterator[tuple[str, Path]]:
    """A tracking URI (a fresh SQLite file, or a real server on 127.0.0.1) and its SQLite file."""
    database = tmp_path / "mlflow.db"
    shutil.copy(empty_store, database)
    if request.param == "sqlite":
        yield f"sqlite:///{database}", database
        return
    with MlflowServer(f"sqlite:///{database}", tmp_path / "artifacts", workers=1) as server:
        yield server.url, database


def _env(tmp_path: Path, uri: str, **extra: str) -> dict[str, str]:
    """A script's environment: this store, a spool of the test's own, the agent on."""
    return agents.child_env(
        MLFLOW_TRACKING_URI=uri,
        AUTOLOG_SPOOL_DIR=str(tmp_path / "spool"),
        AUTOLOG_AGENT="1",
        AUTOLOG_TESTING="0",
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        **extra,
    )


def _train(tmp_path: Path, uri: str, mode: str) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(TRAIN).format(
            steps=STEPS_PER_EPOCH, epochs=EPOCHS, fault_after=FAULT_AFTER_EPOCH
        )
    )
    env = _env(tmp_path, uri)
    out = tmp_path / "out.txt"
    with open(out, "w") as stdout, open(tmp_path / "err.txt", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script), mode], env=env, stdout=stdout, stderr=stderr
        )
        try:
            process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    ended = time.monotonic()
    result = subprocess.CompletedProcess(
        process.args, process.returncode, out.read_text(), (tmp_path / "err.txt").read_text()
    )
    return result, ended


def _steps_logged(stdout: str) -> int:
    epochs = [line for line in stdout.splitlines() if line.startswith("EPOCH ")]
    assert epochs, stdout
    return int(epochs[-1].split()[3])


@pytest.mark.parametrize("mode", ["sigkill", "exit", "sigterm"])
def test_a_training_that_dies_keeps_its_steps_and_its_run_ends_by_itself(
    tmp_path: Path, store: tuple[str, Path], mode: str
) -> None:
    uri, database = store
    result, ended = _train(tmp_path, uri, mode)
    pid = agents.agent_pid(result.stdout)
    try:
        expected_code = {"sigkill": -signal.SIGKILL, "exit": 1, "sigterm": 0}[mode]
        assert result.returncode == expected_code, result.stderr[-3000:]
        logged = _steps_logged(result.stdout)
        if mode == "sigterm":
            # Handled: the script finished the epoch it was in and one more, then returned.
            assert "FIT RETURNED" in result.stdout
            assert logged == (FAULT_AFTER_EPOCH + 1) * STEPS_PER_EPOCH
        else:
            assert logged == FAULT_AFTER_EPOCH * STEPS_PER_EPOCH
        client = MlflowClient(f"sqlite:///{database}")
        status, steps = _wait_for_the_run(client, ended + DELIVERY_DEADLINE)
        if mode != "sigterm":
            # The run's end is the agent's last request; the delivered log goes after it.
            assert agents.wait_gone(pid, 60), "the agent did not finish after its delivery"
    finally:
        agents.stop(pid)
    assert len(steps) == len(set(steps)), "a step was stored twice"
    if mode == "sigterm":
        assert status == "FINISHED"
        assert sorted(steps) == list(range(1, logged + 1))
    else:
        assert status == "KILLED"
        assert len(steps) >= 0.99 * logged, (len(steps), logged)
        assert set(steps) <= set(range(1, logged + 1))
    assert list((tmp_path / "spool").glob("*.jsonl")) == []


def _wait_for_the_run(client: MlflowClient, deadline: float) -> tuple[str, list[int]]:
    """The run's status and its ``batch_loss`` steps, once it has ended (or at the deadline)."""
    status, steps = "", []
    while True:
        runs = client.search_runs(["0"])
        if runs:
            run = runs[0]
            status = run.info.status
            if status != "RUNNING":
                assert run.info.end_time, "an ended run without an end time"
                steps = [m.step for m in client.get_metric_history(run.info.run_id, "batch_loss")]
                return status, steps
        if time.monotonic() > deadline:
            raise AssertionError(f"the run did not end within the deadline (status {status!r})")
        time.sleep(0.2)


LOGGER = """
import os, signal, sys, time
from autolog.batching import BatchLogger, agent

logger = BatchLogger.start_run(run_name="bulk")
for i in range({total}):
    logger.log_metric("m", float(i), step=i)
    if i + 1 == {kill_after}:
        run_id = logger.wait_for_run(30)  # by then the flusher has started the agent
        print("AGENT", agent.AGENT.pid, "RUN", run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_script(
    tmp_path: Path, source: str, uri: str, *args: str, **extra_env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    env = _env(tmp_path, uri, **extra_env)
    result = subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result, time.monotonic()


def test_a_batch_logger_killed_half_way_keeps_what_it_logged(
    tmp_path: Path, empty_store: Path
) -> None:
    """100,000 values logged as fast as a loop can, SIGKILLed after 50,000: the agent
    delivers at least 49,900 of them within 30 s, each once."""
    database = tmp_path / "mlflow.db"
    shutil.copy(empty_store, database)
    uri = f"sqlite:///{database}"
    result, ended = _run_script(tmp_path, LOGGER.format(total=100_000, kill_after=50_000), uri)
    pid = agents.agent_pid(result.stdout)
    try:
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
        client = MlflowClient(uri)
        deadline = ended + 30
        while True:
            [run] = client.search_runs(["0"])
            if run.info.status != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "m")]
    finally:
        agents.stop(pid)
    assert run.info.status == "KILLED" and run.info.end_time
    assert len(steps) == len(set(steps))
    assert len(steps) >= 49_900, len(steps)
    assert set(steps) <= set(range(50_000))


SERVER_DOWN = """
import os, signal, sys, time
from autolog.batching import BatchLogger, agent

logger = BatchLogger.start_run(run_name="outage", retry_timeout=1)
for i in range(300):
    logger.log_metric("m", float(i), step=i)
logger.flush()
print("AGENT", agent.AGENT.pid, "RUN", logger.run_id, flush=True)
sys.stdin.readline()  # the test stops the server
for i in range(300, 600):
    logger.log_metric("m", float(i), step=i)
logger.log_param("p", "v")
time.sleep(1.5)  # the values are in the run log, not in the store
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_server_down_then_training_killed_then_server_back(
    tmp_path: Path, empty_store: Path
) -> None:
    """The store goes down mid-training, the training is SIGKILLed, the store comes back:
    the agent, still retrying, delivers every value once and ends the run."""
    database = tmp_path / "server.db"
    shutil.copy(empty_store, database)
    with MlflowServer(f"sqlite:///{database}", tmp_path / "artifacts", workers=1) as server:
        script = tmp_path / "script.py"
        script.write_text(textwrap.dedent(SERVER_DOWN))
        env = _env(tmp_path, server.url, AUTOLOG_AGENT_PATIENCE="120")
        process = subprocess.Popen(
            [sys.executable, str(script)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        pid = 0
        try:
            assert process.stdout is not None and process.stdin is not None
            line = process.stdout.readline()
            pid = agents.agent_pid(line)
            run_id = line.split("RUN ")[1].split()[0]
            server.kill()
            process.stdin.write("go\n")
            process.stdin.flush()
            assert process.wait(timeout=120) == -signal.SIGKILL
            time.sleep(2)  # the agent meets a store that is down
            assert agents.alive(pid), "the agent gave up while the store was down"
            server.restart()
            assert agents.wait_gone(pid, 60), "the agent did not finish once the store was back"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if pid:
                agents.stop(pid)
        client = MlflowClient(f"sqlite:///{database}")
        steps = [m.step for m in client.get_metric_history(run_id, "m")]
        run = client.get_run(run_id)
    assert sorted(steps) == list(range(600))
    assert run.data.params == {"p": "v"}
    assert run.info.status == "KILLED" and run.info.end_time
    assert list((tmp_path / "spool").glob("*.jsonl")) == []


AGENT_KILLED = """
import os, signal, sys, time, warnings
from autolog.batching import BatchLogger, agent

logger = BatchLogger.start_run(run_name="no agent")
logger.log_metric("m", 0.0, step=0)
logger.flush()
os.kill(agent.AGENT.pid, signal.SIGKILL)
time.sleep(2)  # the flusher looks at the agent every second
for i in range(1, 2000):
    logger.log_metric("m", float(i), step=i)
logger.end_run()
print("RUN", logger.run_id, flush=True)
"""


def test_training_goes_on_when_its_agent_is_killed(tmp_path: Path, empty_store: Path) -> None:
    database = tmp_path / "mlflow.db"
    shutil.copy(empty_store, database)
    uri = f"sqlite:///{database}"
    result, _ = _run_script(tmp_path, AGENT_KILLED, uri)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the delivery agent (pid" in result.stderr and "stopped" in result.stderr
    run_id = result.stdout.split("RUN ")[1].split()[0]
    client = MlflowClient(uri)
    assert [m.step for m in client.get_metric_history(run_id, "m")] == list(range(2000))
    assert client.get_run(run_id).info.status == "FINISHED"


FORK = """
import multiprocessing, os, signal, sys
from autolog.batching import BatchLogger, agent

logger = BatchLogger.start_run(run_name="forking")
for i in range(500):
    logger.log_metric("parent", float(i), step=i)


def child(index):
    # Forked mid-run: the child logs into the same run, through a log of its own.
    for i in range(200):
        logger.log_metric(f"child{index}", float(i), step=i)
    logger.flush()


if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=child, args=(k,)) for k in range(2)]
    for worker in workers:
        worker.start()
    for i in range(500, 1000):
        logger.log_metric("parent", float(i), step=i)
    for worker in workers:
        worker.join()
    run_id = logger.wait_for_run(30)
    print("AGENT", agent.AGENT.pid, "RUN", run_id, flush=True)
    import time
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_that_forks_keeps_its_run_log_whole(tmp_path: Path, empty_store: Path) -> None:
    """Children forked mid-run (multiprocessing's fork) log through run logs of their own;
    the parent, SIGKILLed afterwards, loses nothing: its agent delivers its log intact."""
    database = tmp_path / "mlflow.db"
    shutil.copy(empty_store, database)
    uri = f"sqlite:///{database}"
    result, ended = _run_script(tmp_path, FORK, uri)
    pid = agents.agent_pid(result.stdout)
    run_id = result.stdout.split("RUN ")[1].split()[0]
    try:
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
        client = MlflowClient(uri)
        deadline = ended + 60  # three processes' agents, each importing MLflow
        while client.get_run(run_id).info.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        agents.stop(pid)
    history = {
        key: [m.step for m in client.get_metric_history(run_id, key)]
        for key in ("parent", "child0", "child1")
    }
    assert sorted(history["parent"]) == list(range(1000))
    assert sorted(history["child0"]) == list(range(200))
    assert sorted(history["child1"]) == list(range(200))
    assert client.get_run(run_id).info.status == "KILLED"
    assert "not a spool record" not in result.stderr
