"""BatchLogger against a real ``mlflow server`` subprocess: parallel requests and outages."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from mlflow import MlflowClient

from autolog.batching import BatchLogger
from autolog.batching.sync import sync_spool
from tests.core.batching.helpers import history, spool_files, wait_until
from tests.support.mlflow_server import MlflowServer

pytestmark = pytest.mark.server


@pytest.fixture
def server(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> MlflowServer:
    import mlflow

    if not mlflow_server.running:
        mlflow_server.restart()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.url)
    yield mlflow_server
    mlflow.set_tracking_uri(previous)


def test_http_round_trip_with_requests_in_flight(
    server: MlflowServer, spool_dir: Path, tmp_path: Path
) -> None:
    artifact = tmp_path / "summary.txt"
    artifact.write_text("done")
    with BatchLogger.start_run(run_name="http", max_in_flight=4) as logger:
        logger.log_params({f"p{i}": i for i in range(120)})
        for step in range(60):
            logger.log_metrics({f"k{k}": step + k / 100 for k in range(100)}, step=step)
            if step % 20 == 0:
                logger.set_tag("last_step", step)
        logger.log_artifact(str(artifact), artifact_path="out")
        logger.end_run()
    client = MlflowClient(server.url)
    run_id = logger.run_id
    assert run_id is not None
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(run.data.params) == 120
    assert run.data.tags["last_step"] == "40"
    assert history(client, run_id, "k7") == [(s, s + 0.07) for s in range(60)]
    assert [a.path for a in client.list_artifacts(run_id, "out")] == ["out/summary.txt"]
    assert spool_files(spool_dir) == []


def test_outages_mid_stream_and_from_the_start(server: MlflowServer, spool_dir: Path) -> None:
    """One outage (restarting a server takes long) seen by two runs.

    ``streaming`` is logging when the server is killed; ``offline`` starts while it is
    down, so its run cannot even be created. After the restart, ``streaming`` delivers
    its spool itself (on close), ``offline`` is delivered by ``autolog sync``; every value
    lands exactly once, and a second sync finds nothing to do.
    """
    streaming = BatchLogger.start_run(
        run_name="outage", retry_timeout=1.0, retry_max_delay=0.2, flush_interval=0.1
    )
    run_id = streaming.wait_for_run(timeout=60)
    assert run_id is not None
    keys = [f"k{k}" for k in range(20)]
    killed = threading.Event()

    def kill_soon() -> None:
        time.sleep(0.5)
        server.kill()
        killed.set()

    threading.Thread(target=kill_soon).start()
    step = 0
    with pytest.warns(match="spool"):
        while not killed.is_set() or step < 300:
            streaming.log_metrics({k: float(step) for k in keys}, step=step)
            streaming.set_tag("step", step)
            step += 1
            time.sleep(0.002)
        streaming.flush(timeout=10)  # durable: in the store or the spool
    assert spool_files(spool_dir)

    with pytest.warns(match="could not be created"):
        offline = BatchLogger.start_run(run_name="never-up", retry_timeout=0.5)
        for i in range(1500):
            offline.log_metric("loss", 1.0 / (i + 1), step=i)
        offline.log_params({"lr": 0.1, "batch": 32})
        offline.end_run("KILLED")
    assert offline.run_id is None

    server.restart()
    for more in range(step, step + 50):
        streaming.log_metrics({k: float(more) for k in keys}, step=more)
    streaming.set_tag("step", "final")
    streaming.close()  # replays its spool now that the server answers
    report = sync_spool(spool_dir, progress=False)
    assert report.ok and len(report.runs_created) == 1, str(report)
    assert sync_spool(spool_dir, progress=False).files == 0
    assert spool_files(spool_dir) == []

    client = MlflowClient(server.url)
    total = step + 50
    for key in keys:
        assert history(client, run_id, key) == [(s, float(s)) for s in range(total)]
    assert client.get_run(run_id).data.tags["step"] == "final"

    runs = client.search_runs(["0"], filter_string="attributes.run_name = 'never-up'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "KILLED"
    assert run.data.params == {"lr": "0.1", "batch": "32"}
    assert history(client, run.info.run_id, "loss") == [(i, 1.0 / (i + 1)) for i in range(1500)]


def test_end_run_does_not_wait_out_the_retry_budget(server: MlflowServer, spool_dir: Path) -> None:
    """The server dies mid-run; with the default 60 s retry budget per request, ending the
    run stops retrying what fails, spools it, and returns: the training script goes on,
    and ``autolog sync`` delivers everything once the server is back."""
    logger = BatchLogger.start_run(run_name="ending-in-an-outage")
    run_id = logger.wait_for_run(timeout=60)
    assert run_id is not None
    for step in range(100):
        logger.log_metric("loss", float(step), step=step)
    logger.flush()
    server.kill()
    for step in range(100, 200):
        logger.log_metric("loss", float(step), step=step)
    with pytest.warns(match="spool"):
        logger.flush(timeout=0.5)  # the stream is now in a retry loop or spooling
        began = time.monotonic()
        logger.end_run()
        ended = time.monotonic() - began
    assert ended < 20, f"end_run waited {ended:.1f} s into a 60 s retry budget"
    assert spool_files(spool_dir)

    server.restart()
    assert sync_spool(spool_dir, progress=False).ok
    client = MlflowClient(server.url)
    assert history(client, run_id, "loss") == [(s, float(s)) for s in range(200)]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_server_gets_each_request_as_it_fills(server: MlflowServer, spool_dir: Path) -> None:
    """To a tracking server a full request goes at once, long before the interval: the
    server does its work in its own process, overlapped with the caller's."""
    client = MlflowClient(server.url)
    with BatchLogger.start_run(run_name="full", flush_interval=600.0) as logger:
        run_id = logger.wait_for_run(timeout=60)
        assert run_id is not None
        logger.flush()  # the flusher's last pass is now; without a full request, the next
        # would come when its longest sleep (5 s) is up
        for step in range(2500):
            logger.log_metric("loss", float(step), step=step)
        # The two full requests' worth arrive without a flush, long before the interval (a
        # busy machine may take seconds to store them); the half request waits for it.
        wait_until(lambda: len(history(client, run_id, "loss")) >= 2000, timeout=60)
        assert len(history(client, run_id, "loss")) < 2500
        logger.end_run()
    assert history(client, run_id, "loss") == [(s, float(s)) for s in range(2500)]


def test_values_reach_the_store_while_logging_never_pauses(
    server: MlflowServer, spool_dir: Path
) -> None:
    """A loop that logs all the time (a training step every millisecond) still has its
    values sent every ``flush_interval``, not all at the end of the run."""
    client = MlflowClient(server.url)
    with BatchLogger.start_run(run_name="busy", flush_interval=0.3) as logger:
        run_id = logger.wait_for_run(timeout=60)
        assert run_id is not None
        seen_while_logging = 0
        step = 0
        began = time.monotonic()
        while time.monotonic() - began < 3.0:
            logger.log_metric("loss", float(step), step=step)
            step += 1
            time.sleep(0.001)
            if step % 500 == 0:
                seen_while_logging = len(client.get_metric_history(run_id, "loss"))
        logger.end_run()
    assert seen_while_logging > 0, "nothing was sent while the loop was logging"
    assert history(client, run_id, "loss") == [(s, float(s)) for s in range(step)]


class _EndFirstClient:
    """The real client, whose ``log_batch`` calls (once ``hold`` is set) wait for the
    run's end to reach the server first, and then succeed or, with ``fail``, fail as if
    the network were down. ``events`` records what reached the server, in order."""

    # The batching layer sends through a client's own store when it has one; without it
    # every request goes through the two methods below.
    _tracking_client = None

    def __init__(self, real: MlflowClient) -> None:
        self.real = real
        self.hold = False
        self.fail = False
        self.ended = threading.Event()
        self.events: list[str] = []

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = (), tags: Any = ()) -> None:
        if self.hold:
            self.ended.wait(20)
            if self.fail:
                self.events.append("batch failed")
                raise ConnectionError("simulated network failure")
        self.real.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        self.events.append("batch")

    def set_terminated(self, run_id: str, status: str | None = None, end_time: Any = None) -> None:
        self.real.set_terminated(run_id, status, end_time)
        self.events.append("end")
        self.ended.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _end_while_last_values_in_flight(
    server: MlflowServer, *, fail: bool
) -> tuple[_EndFirstClient, str]:
    gated = _EndFirstClient(MlflowClient(server.url))
    logger = BatchLogger.start_run(
        run_name="end-overlaps", client=cast(MlflowClient, gated), retry_timeout=0.5
    )
    run_id = logger.wait_for_run(timeout=60)
    assert run_id is not None
    logger.log_params({"lr": 0.1})
    logger.log_metric("loss", 0.0, step=0)
    logger.flush()
    gated.hold, gated.fail = True, fail
    for step in range(1, 2500):  # three requests' worth: the layer's limit is 1000
        logger.log_metric("loss", 1.0 / step, step=step)
    logger.end_run(timeout=30)
    return gated, run_id


def test_run_end_goes_out_alongside_the_last_values(server: MlflowServer, spool_dir: Path) -> None:
    """With a server, ending a run does not wait for the answers to its last metric
    requests: the end reaches the server while they are still in flight (here they only
    go on once it has), so a slow server costs the end of training one round trip, not
    two. Everything is in the store when ``end_run`` returns."""
    gated, run_id = _end_while_last_values_in_flight(server, fail=False)
    assert gated.events[:2] == ["batch", "end"], gated.events  # params, then the end first
    assert gated.events.count("batch") >= 4 and gated.events[-1] == "batch"
    client = MlflowClient(server.url)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert history(client, run_id, "loss") == [(0, 0.0)] + [(s, 1.0 / s) for s in range(1, 2500)]
    assert spool_files(spool_dir) == []


def test_last_values_failing_after_the_end_are_spooled_and_the_run_ended_again(
    server: MlflowServer, spool_dir: Path
) -> None:
    """The end went out alongside the last values, which then fail: they are spooled,
    followed by the end once more, so ``autolog sync`` delivers them and the run ends
    with the same status and end time after its last values."""
    with pytest.warns(match="spool"):
        gated, run_id = _end_while_last_values_in_flight(server, fail=True)
    assert "batch failed" in gated.events
    client = MlflowClient(server.url)
    ended = client.get_run(run_id).info
    assert ended.status == "FINISHED"
    assert history(client, run_id, "loss") == [(0, 0.0)]
    (spooled,) = spool_files(spool_dir)
    kinds = [json.loads(line).get("k") for line in spooled.read_text().splitlines()]
    assert kinds[-1] == "end" and "batch" in kinds, kinds

    report = sync_spool(spool_dir, progress=False)
    assert report.ok, str(report)
    run = client.get_run(run_id).info
    assert (run.status, run.end_time) == ("FINISHED", ended.end_time)
    assert history(client, run_id, "loss") == [(0, 0.0)] + [(s, 1.0 / s) for s in range(1, 2500)]
    assert spool_files(spool_dir) == []
