"""The batching layer against MLflow's production store: a real ``mlflow server`` on PostgreSQL.

Guarantee 2 (nothing accepted is lost) and 3 (off the training thread, chunked within
MLflow's limits) on the backend teams actually run: every value logged comes back from the
store exactly once, also when the server is SIGKILLed in the middle of a stream and the rest
is delivered by ``autolog sync``.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.core.batching.helpers import spool_files
from tests.reliability import _support

pytestmark = pytest.mark.server


def test_round_trip_params_metrics_tags_artifacts(tracking: Any, tmp_path: Path) -> None:
    from autolog import BatchLogger

    params = {f"param_{i:03d}": f"value {i}" for i in range(250)}  # 3 requests' worth
    tags = {f"tag_{i:03d}": f"t{i}" for i in range(150)}
    keys, steps = 20, 300  # 6,000 values: several full 1,000-metric requests
    artifact = tmp_path / "notes.txt"
    artifact.write_text("hello from the reliability suite\n")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")

    started = time.perf_counter()
    with BatchLogger.start_run(tags={"suite": "reliability"}) as logger:
        logger.log_params(params)
        logger.set_tags(tags)
        for step in range(steps):
            logger.log_metrics({f"metric_{k:02d}": k + step / 1000 for k in range(keys)}, step)
        logger.log_metric("special", math.nan, step=0)
        logger.log_metric("special", math.inf, step=1)
        logger.log_metric("special", -math.inf, step=2)
        logger.log_artifact(str(artifact))
        logger.log_artifacts(str(folder), "folder")
        logger.log_text("text body", "texts/t.txt")
        enqueue_seconds = time.perf_counter() - started
        logger.end_run()
        run_id = logger.run_id
    assert run_id is not None

    run = tracking.run(run_id)
    assert run.status == "FINISHED"
    assert run.params == params
    assert {k: run.tags[k] for k in tags} == tags
    assert run.tags["suite"] == "reliability"
    for k in range(keys):
        assert run.history(f"metric_{k:02d}") == [(s, k + s / 1000) for s in range(steps)]
    special = run.values("special")
    assert math.isnan(special[0]) and special[1] > 1e308 and special[2] < -1e308
    assert run.steps("special") == [0, 1, 2]
    assert set(run.artifacts) == {"notes.txt", "folder/a.txt", "folder/sub/b.txt", "texts/t.txt"}
    checked = len(params) + len(tags) + keys * steps + 3
    _support.record(
        "reliability",
        "batching_postgres_round_trip",
        {
            "values_checked": checked,
            "values_lost": 0,
            "duplicates": 0,
            "artifacts": 4,
            "caller_seconds_to_enqueue": round(enqueue_seconds, 4),
        },
    )


def test_a_value_reaches_the_store_within_the_flush_interval(tracking: Any) -> None:
    """``flush_interval`` is "the longest time a logged value waits before it is sent".

    Today the flusher, once idle, sleeps up to 5 s (``Engine._next_timeout`` only looks at
    the policy's interval when the inbox is non-empty *at the moment it goes to sleep*, and
    a logging call wakes it only once 1,000 records are queued), so a value logged into an
    idle run waits up to 5 s whatever the interval.
    """
    from autolog import BatchLogger

    interval = 0.2
    logger = BatchLogger.start_run(flush_interval=interval)
    run_id = logger.wait_for_run(30)
    assert run_id is not None
    time.sleep(1.0)  # let the flusher go idle
    logged = time.monotonic()
    logger.log_metric("probe", 1.0, step=0)
    waited = None
    while time.monotonic() - logged < 8:
        if tracking.client.get_metric_history(run_id, "probe"):
            waited = time.monotonic() - logged
            break
        time.sleep(0.05)
    logger.end_run()
    _support.record("reliability", "flush_interval_latency_seconds", waited)
    assert waited is not None
    assert waited <= interval + 1.0, f"the value waited {waited:.2f} s (interval {interval} s)"


def test_server_killed_mid_stream_then_restarted_and_synced(
    tracking: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the server while a run streams; the run ends during the outage (so the rest
    waits in the spool); restart the server; ``autolog sync`` (twice).

    Every value logged is then in PostgreSQL exactly once: nothing lost in the outage,
    nothing doubled by the retries, the end-of-run replay attempt, or the second sync.
    """
    from autolog import BatchLogger

    # Give up on a request after 2 s (default 60 s), so the outage really goes to the spool.
    _support.default_policy(monkeypatch, retry_timeout=2.0, retry_max_delay=0.5)
    server = tracking.server
    logger = BatchLogger.start_run(flush_interval=0.1)
    assert logger.wait_for_run(30) is not None
    keys = [f"stream_{k}" for k in range(5)]
    logged: dict[str, list[tuple[int, float]]] = {key: [] for key in keys}
    stop = threading.Event()
    errors: list[BaseException] = []

    def stream() -> None:
        try:
            step = 0
            while not stop.is_set():
                values = {key: step * 10.0 + i for i, key in enumerate(keys)}
                logger.log_metrics(values, step=step)
                for key, value in values.items():
                    logged[key].append((step, value))
                if step % 25 == 0:
                    logger.log_param(f"checkpoint_{step}", step)
                step += 1
                time.sleep(0.005)
        except BaseException as exc:  # the caller must never see one
            errors.append(exc)

    producer = threading.Thread(target=stream, name="producer")
    producer.start()
    try:
        time.sleep(1.5)
        server.kill()
        killed_at = len(logged[keys[0]])
        time.sleep(3.0)  # longer than retry_timeout: the run switches to the spool
    finally:
        stop.set()
        producer.join(timeout=30)
    assert not producer.is_alive(), "the producer thread hung"
    assert not errors
    ended = time.perf_counter()
    logger.end_run()  # the server is still down: the rest (and the run end) is spooled
    end_seconds = time.perf_counter() - ended
    spooled = spool_files(tracking.spool)
    server.restart()
    assert spooled, "the outage left nothing in the spool"

    first = _support.sync_cli(tracking.spool)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Delivered" in first.stdout
    second = _support.sync_cli(tracking.spool)  # idempotent: nothing left, nothing doubled
    assert second.returncode == 0, second.stdout + second.stderr
    assert spool_files(tracking.spool) == []

    run = tracking.run(logger.run_id)
    total = 0
    for key in keys:
        assert run.history(key) == logged[key], key
        total += len(logged[key])
    steps = len(logged[keys[0]])
    expected_params = {f"checkpoint_{s}": str(s) for s in range(0, steps, 25)}
    assert run.params == expected_params
    assert run.status == "FINISHED"  # the spooled run end was delivered too
    assert 0 < killed_at < steps
    _support.record(
        "reliability",
        "batching_postgres_server_killed",
        {
            "values_checked": total + len(expected_params),
            "values_lost": 0,
            "duplicates": 0,
            "values_logged_before_kill": killed_at * len(keys),
            "end_run_seconds_while_down": round(end_seconds, 2),
            "first_sync": first.stdout.strip().splitlines()[-1],
            "second_sync": second.stdout.strip().splitlines()[-1],
        },
    )


def test_bulk_metric_writes_equal_log_batch_on_postgresql(postgres: Any) -> None:
    """Training processes that point at the database directly get the bulk writer too."""
    from mlflow import MlflowClient

    from tests.core.batching.helpers import bulk_writes_equal_log_batch

    client = MlflowClient(postgres.uri)
    bulk_writes_equal_log_batch(client, client.create_experiment(f"bulk-{time.time_ns()}"))
