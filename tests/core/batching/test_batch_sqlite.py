"""BatchLogger against a real SQLite tracking store in a temp dir."""

from __future__ import annotations

import math
import shutil
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

from autolog.batching import BatchLogger, InvalidDataWarning
from tests.core.batching.helpers import CountingClient, history, spool_files, wait_until


def test_round_trip_params_metrics_tags_artifacts(
    client: MlflowClient, tmp_path: Path, spool_dir: Path
) -> None:
    artifact = tmp_path / "model.txt"
    artifact.write_text("weights")
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")

    with BatchLogger.start_run(run_name="round-trip", tags={"team": "ml"}) as logger:
        logger.log_param("lr", 0.1)
        logger.log_params({"layers": 3, "optimizer": "adam"})
        logger.set_tag("stage", "dev")
        logger.set_tags({"framework": "none"})
        for step in range(5):
            logger.log_metric("loss", 1.0 / (step + 1), step=step)
        logger.log_metrics({"acc": np.float32(0.5), "n": np.int64(7), "flag": True}, step=9)
        logger.log_artifact(str(artifact))
        logger.log_artifacts(str(folder), artifact_path="plots")
        logger.log_text("hello", "notes/readme.txt")
        run_id = logger.wait_for_run(timeout=30)
    assert run_id is not None

    run = client.get_run(run_id)
    assert run.info.run_name == "round-trip"
    assert run.info.status == "RUNNING"  # close() does not end the run
    assert run.data.params == {"lr": "0.1", "layers": "3", "optimizer": "adam"}
    assert run.data.tags["team"] == "ml"
    assert run.data.tags["stage"] == "dev"
    assert run.data.tags["framework"] == "none"
    assert history(client, run_id, "loss") == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert run.data.metrics["acc"] == 0.5
    assert run.data.metrics["n"] == 7.0
    assert run.data.metrics["flag"] == 1.0
    paths = {a.path for a in client.list_artifacts(run_id)}
    assert {"model.txt", "plots", "notes"} <= paths
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {
        "plots/a.txt",
        "plots/b.txt",
    }
    text = client.download_artifacts(run_id, "notes/readme.txt", str(tmp_path / "dl"))
    assert Path(text).read_text() == "hello"
    assert spool_files(spool_dir) == []


def test_end_run_sets_status_after_all_data(client: MlflowClient, spool_dir: Path) -> None:
    run_id = client.create_run("0").info.run_id
    logger = BatchLogger(run_id)
    logger.log_metric("m", 1.0)
    logger.end_run("FAILED")
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.metrics == {"m": 1.0}
    with pytest.warns(match="after close"):
        logger.log_metric("late", 1.0)  # after end_run: ignored with a warning, never raised


def test_limits_chunk_requests(client: MlflowClient, spool_dir: Path) -> None:
    counting = CountingClient(client)
    run_id = client.create_run("0").info.run_id
    logger = BatchLogger(run_id, client=counting)  # type: ignore[arg-type]
    for i in range(2500):
        logger.log_metric(f"m{i % 10}", float(i), step=i)
    logger.log_params({f"p{i}": i for i in range(250)})
    logger.set_tags({f"t{i}": i for i in range(150)})
    logger.close()

    for metrics, params, tags in counting.requests:
        assert metrics <= 1000 and params <= 100 and tags <= 100
        assert metrics + params + tags <= 1000
    assert sum(r[0] for r in counting.requests) == 2500
    assert sum(r[1] for r in counting.requests) == 250
    assert sum(r[2] for r in counting.requests) == 150
    # 2900 entities: the minimum is 3 requests of 1000; params force at least 3 as well.
    assert 3 <= len(counting.requests) <= 6
    run = client.get_run(run_id)
    assert len(run.data.params) == 250
    assert sum(len(history(client, run_id, f"m{k}")) for k in range(10)) == 2500


def test_store_refusal_is_split_and_isolated(client: MlflowClient, spool_dir: Path) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", "0.1")  # logged before us: the store will refuse a change
    counting = CountingClient(client)
    logger = BatchLogger(run_id, client=counting)  # type: ignore[arg-type]
    for i in range(500):
        logger.log_metric("loss", float(i), step=i)
    logger.log_params({"lr": 0.2, "epochs": 10})
    with pytest.warns(InvalidDataWarning) as record:
        logger.close()

    assert len(history(client, run_id, "loss")) == 500
    run = client.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "epochs": "10"}
    refused = [w.message for w in record if isinstance(w.message, InvalidDataWarning)]
    assert [(w.kind, w.key) for w in refused] == [("param", "lr")]
    assert "Changing param values is not allowed" in refused[0].reason
    assert len(counting.requests) > 1  # the refused request was halved


def test_param_relogged_with_other_value_warns_and_keeps_batch(
    client: MlflowClient, spool_dir: Path
) -> None:
    with pytest.warns(InvalidDataWarning, match=r"'units'.*'64'.*'128'"):
        with BatchLogger.start_run() as logger:
            logger.log_param("units", 64)
            logger.log_param("units", 64)  # same value: fine
            logger.log_param("units", 128)
            logger.log_metric("m", 1.0)
            run_id = logger.wait_for_run()
    assert run_id is not None
    run = client.get_run(run_id)
    assert run.data.params == {"units": "64"}
    assert run.data.metrics == {"m": 1.0}


def test_one_warning_per_key(client: MlflowClient, spool_dir: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with BatchLogger.start_run() as logger:
            for i in range(100):
                logger.log_metric("bad key!", float(i))
                logger.log_metric("text", "not a number")
                logger.log_metric("good", float(i), step=i)
            run_id = logger.wait_for_run()
    reports = [w.message for w in caught if isinstance(w.message, InvalidDataWarning)]
    assert sorted(w.key for w in reports) == ["bad key!", "text"]
    assert run_id is not None
    assert len(history(client, run_id, "good")) == 100


def test_nan_and_inf_stored_as_mlflow_stores_them(client: MlflowClient, spool_dir: Path) -> None:
    with BatchLogger.start_run() as logger:
        logger.log_metric("nan", float("nan"))
        logger.log_metric("inf", np.float64("inf"))
        logger.log_metric("ninf", -math.inf)
        run_id = logger.wait_for_run()
    assert run_id is not None
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] > 1e308 and metrics["ninf"] < -1e308


def test_order_within_key_and_step_is_kept(client: MlflowClient, spool_dir: Path) -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    with BatchLogger.start_run() as logger:
        for value in values:  # same key and step, within one millisecond
            logger.log_metric("loss", value, step=0)
        run_id = logger.wait_for_run()
    assert run_id is not None
    assert [v for _, v in history(client, run_id, "loss")] == values
    assert client.get_run(run_id).data.metrics["loss"] == 3.0  # the last one logged


def test_single_values_of_every_kind_store_what_was_logged(
    client: MlflowClient, spool_dir: Path
) -> None:
    # Floats with an int step take the flusher's one-loop checks; ints, numpy scalars,
    # explicit timestamps, missing and out-of-range steps take the per-value ones.
    # Interleaved, each key keeps its logging order and each bad item is reported by name.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with BatchLogger.start_run() as logger:
            for step in range(3):
                logger.log_metric("loss", 1.0 / (step + 1), step=step)
                logger.log_metric("count", step, step=step)
                logger.log_metric("np", np.float32(step) + 0.5, step=step)
                logger.log_metric("stamped", float(step), step=step, timestamp=1000 + step)
                logger.log_metric("loss", 9.0, step=step)  # same step, same millisecond
            logger.log_metric("nostep", 2.5)
            logger.log_metric("bad*key", 1.0, step=0)
            logger.log_metric("text", "not a number", step=0)  # type: ignore[arg-type]
            logger.log_metric("halfstep", 1.0, step=1.5)  # type: ignore[arg-type]
            logger.log_metric("floatstep", 1.0, step=2.0)  # type: ignore[arg-type]
            # Beyond a 64-bit step the store would refuse the whole request.
            logger.log_metric("hugestep", 1.0, step=2**63)
            logger.log_metrics({"hugemany": 1.0, "hugemany2": 2.0}, step=-(2**63) - 1)
            logger.log_metric("after", 3.0, step=3)
            run_id = logger.wait_for_run()
    assert run_id is not None
    # Sorted by step (stably): across steps, values of one millisecond come back by step.
    assert sorted(history(client, run_id, "loss"), key=lambda sv: sv[0]) == [
        (0, 1.0),
        (0, 9.0),
        (1, 0.5),
        (1, 9.0),
        (2, 1.0 / 3),
        (2, 9.0),
    ]
    assert history(client, run_id, "count") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert history(client, run_id, "np") == [(0, 0.5), (1, 1.5), (2, 2.5)]
    stamped = client.get_metric_history(run_id, "stamped")
    assert [(m.step, m.value, m.timestamp) for m in stamped] == [
        (0, 0.0, 1000),
        (1, 1.0, 1001),
        (2, 2.0, 1002),
    ]
    assert history(client, run_id, "nostep") == [(0, 2.5)]
    assert history(client, run_id, "floatstep") == [(2, 1.0)]
    assert history(client, run_id, "after") == [(3, 3.0)]
    stored = client.get_run(run_id).data.metrics
    dropped = {"bad*key", "text", "halfstep", "hugestep", "hugemany", "hugemany2"}
    assert not dropped & set(stored)
    reported = " ".join(str(w.message) for w in caught if w.category is InvalidDataWarning)
    for name in dropped:
        assert name in reported


def test_eight_threads_eight_runs_lose_and_duplicate_nothing(
    client: MlflowClient, spool_dir: Path
) -> None:
    loggers = [BatchLogger.start_run(run_name=f"t{i}") for i in range(8)]
    steps = 600

    def work(index: int) -> None:
        logger = loggers[index]
        for step in range(steps):
            logger.log_metrics({"a": float(step), "b": float(index)}, step=step)
            if step % 100 == 0:
                logger.set_tag("progress", str(step))
        logger.log_param("thread", index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for logger in loggers:
        logger.close()

    for index, logger in enumerate(loggers):
        run_id = logger.run_id
        assert run_id is not None
        a = history(client, run_id, "a")
        assert sorted(a) == [(s, float(s)) for s in range(steps)]
        assert len(history(client, run_id, "b")) == steps
        run = client.get_run(run_id)
        assert run.data.params == {"thread": str(index)}
        assert run.data.tags["progress"] == "500"


def test_caller_thread_only_enqueues(client: MlflowClient, spool_dir: Path) -> None:
    logger = BatchLogger(client.create_run("0").info.run_id)
    n = 20_000
    start = time.perf_counter()
    for i in range(n):
        logger.log_metric("m", float(i), step=i)
    per_value = (time.perf_counter() - start) / n
    logger.close()
    # The target is 5 us on the caller's thread; allow slack for a loaded CI machine.
    assert per_value < 20e-6, f"{per_value * 1e6:.2f} us per value"


def test_submit_runs_in_order_and_failures_only_warn(client: MlflowClient, spool_dir: Path) -> None:
    seen: list[str] = []
    logger = BatchLogger.start_run()
    logger.log_metric("m", 1.0)
    logger.submit(lambda: seen.append(str(logger.run_id)), description="record the run id")

    def boom() -> None:
        raise RuntimeError("packaging failed")

    logger.submit(boom, description="packaging the model")
    with pytest.warns(match="packaging the model failed"):
        logger.close()
    assert seen == [logger.run_id]


def test_policy_is_validated() -> None:
    with pytest.raises(TypeError, match="flush_interval"):
        BatchLogger("0" * 32, flush_intervall=1.0)
    with pytest.raises(ValueError, match="retry_timeout"):
        BatchLogger("0" * 32, retry_timeout=-1)


def test_tracking_uri_is_pinned_at_creation(
    client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spool_dir: Path
) -> None:
    import mlflow

    logger = BatchLogger.start_run()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    logger.log_metric("m", 2.0)
    logger.close()
    assert logger.run_id is not None
    assert client.get_run(logger.run_id).data.metrics == {"m": 2.0}


def test_submitted_work_logs_artifacts_after_end_run(
    client: MlflowClient, tmp_path: Path, spool_dir: Path
) -> None:
    """Work submitted before ``end_run`` (model packaging) runs after it returned control
    to the logger; what it logs is queued right after it, so before the run's end."""
    import tempfile

    logger = BatchLogger.start_run(run_name="packaged")
    made: list[str] = []

    def package() -> None:
        time.sleep(0.3)  # end_run has closed the logger by now
        folder = Path(tempfile.mkdtemp(prefix="test-model-")) / "model"
        folder.mkdir()
        (folder / "MLmodel").write_text("flavors: {}\n")
        made.append(str(folder.parent))
        logger.log_temp_artifacts(str(folder), "model")
        logger.log_text("packaged", "notes.txt")

    logger.submit(package, description="packaging a model")
    logger.end_run()
    run_id = logger.run_id
    assert run_id is not None
    assert {a.path for a in client.list_artifacts(run_id)} == {"model", "notes.txt"}
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/MLmodel"]
    assert client.get_run(run_id).info.status == "FINISHED"
    assert made and not Path(made[0]).exists()  # the temp folder was the logger's to delete
    with pytest.warns(match=r"log_text\(\) called after close"):
        logger.log_text("late", "late.txt")  # outside submitted work: refused as before


def test_send_pending_delivers_without_waiting_for_the_interval(
    client: MlflowClient, spool_dir: Path
) -> None:
    logger = BatchLogger.start_run(flush_interval=600.0)
    run_id = logger.wait_for_run(timeout=30)
    assert run_id is not None
    for step in range(3):
        logger.log_metric("loss", float(step), step=step)

    logger.send_pending()  # with a 10-minute interval, only this sends them

    wait_until(lambda: len(history(client, run_id, "loss")) == 3)
    assert history(client, run_id, "loss") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert client.get_run(run_id).info.status == "RUNNING"  # sent, not ended
    logger.log_metric("loss", 3.0, step=3)  # and still accepting
    logger.end_run()
    assert len(history(client, run_id, "loss")) == 4
    assert client.get_run(run_id).info.status == "FINISHED"


def test_requests_queued_behind_one_in_flight_leave_as_one(
    client: MlflowClient, spool_dir: Path
) -> None:
    gate, sending = threading.Event(), threading.Event()

    class SlowClient(CountingClient):
        def log_batch(self, *args: Any, **kwargs: Any) -> None:
            sending.set()
            gate.wait(30)
            super().log_batch(*args, **kwargs)

    slow = SlowClient(client)
    run_id = client.create_run("0").info.run_id
    logger = BatchLogger(run_id, client=slow, flush_interval=600.0)  # type: ignore[arg-type]
    logger.log_metric("loss", 0.0, step=0)
    logger.send_pending()
    assert sending.wait(30)  # the first request is out, and hangs until the gate opens
    for step in range(1, 4):
        logger.log_metric("loss", float(step), step=step)
        logger.send_pending()
    logger.set_tag("phase", "done")
    logger.send_pending()
    wait_until(lambda: len(logger._state.ops) == 4)  # four requests queue behind it

    gate.set()
    logger.end_run()
    assert slow.requests == [(1, 0, 0), (3, 0, 1)]
    assert history(client, run_id, "loss") == [(s, float(s)) for s in range(4)]
    assert client.get_run(run_id).data.tags["phase"] == "done"


def test_an_outage_is_retried_by_one_request_at_a_time(
    client: MlflowClient, spool_dir: Path
) -> None:
    outage = CountingClient(client)
    run_id = client.create_run("0").info.run_id
    logger = BatchLogger(
        run_id,
        client=outage,  # type: ignore[arg-type]
        max_in_flight=4,
        flush_interval=0.05,
        retry_initial_delay=0.02,
        retry_max_delay=0.05,
    )
    outage.fail_after = 0  # the network is down from now on
    for step in range(1000):
        logger.log_metric("m", float(step), step=step)
    wait_until(lambda: outage.failed)
    for step in range(1000, 5000):  # four more requests' worth, while the first one fails
        logger.log_metric("m", float(step), step=step)
    time.sleep(1.0)

    # Only the request that met the outage was tried again; the others waited for it.
    assert set(outage.failed) == {0}
    outage.fail_after = None
    logger.end_run()
    assert history(client, run_id, "m") == [(s, float(s)) for s in range(5000)]
    assert spool_files(spool_dir) == []


def test_a_broken_flusher_holds_end_run_briefly_and_loses_nothing(
    client: MlflowClient, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autolog.batching import flusher

    logger = BatchLogger.start_run()
    run_id = logger.wait_for_run(timeout=30)
    assert run_id is not None
    original = flusher.Engine._pump

    def broken(self: flusher.Engine, run: object) -> None:
        raise RuntimeError("a bug in the batching layer")

    monkeypatch.setattr(flusher.Engine, "_pump", broken)
    for step in range(100):
        logger.log_metric("loss", float(step), step=step)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="a bug in the batching layer"):
        logger.end_run(timeout=120)  # under AUTOLOG_TESTING the bug reaches the caller
    waited = time.monotonic() - began

    # Nothing can be delivered while the bug lasts: waiting the whole timeout would only
    # hold up the user's program.
    assert waited < 60, f"end_run waited {waited:.1f} s of its 120 s"
    monkeypatch.setattr(flusher.Engine, "_pump", original)
    flusher.ENGINE.wake.set()
    wait_until(lambda: client.get_run(run_id).info.status == "FINISHED")
    assert history(client, run_id, "loss") == [(s, float(s)) for s in range(100)]


def _sender_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("autolog-sender")}


def test_sender_threads_stop_once_no_run_uses_their_store(
    tmp_path: Path, spool_dir: Path, empty_store: Path
) -> None:
    """A long-lived process logging to many stores, or through many clients, does not
    keep idle threads for each; a store used again still works."""
    before = _sender_threads()
    stores = []
    for index in range(4):
        shutil.copy(empty_store, tmp_path / f"store-{index}.db")
        store = MlflowClient(f"sqlite:///{tmp_path / f'store-{index}.db'}")
        logger = BatchLogger.start_run(client=store, run_name=f"run-{index}")
        logger.log_param("index", index)
        for step in range(3):
            logger.log_metric("loss", float(index + step), step=step)
        run_id = logger.wait_for_run(timeout=30)
        logger.end_run()
        assert run_id is not None
        stores.append((store, run_id))
        # A sender thread gets its stop signal when the run retires, and exits at once.
        wait_until(lambda: not (_sender_threads() - before), timeout=10)

    again = BatchLogger.start_run(client=stores[0][0], run_name="again")
    again.log_metric("loss", 9.0, step=0)
    again_id = again.wait_for_run(timeout=30)
    again.end_run()
    wait_until(lambda: not (_sender_threads() - before), timeout=10)

    for index, (store, run_id) in enumerate(stores):
        run = store.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params == {"index": str(index)}
        assert history(store, run_id, "loss") == [(s, float(index + s)) for s in range(3)]
    assert again_id is not None
    assert history(stores[0][0], again_id, "loss") == [(0, 9.0)]
    assert spool_files(spool_dir) == []


def test_a_local_store_gets_the_interval_s_values_together(
    client: MlflowClient, spool_dir: Path
) -> None:
    """Into a local store, values go once per ``flush_interval``, not each request as it
    fills: its writes run in this process, beside the caller's training loop."""
    logger = BatchLogger.start_run(flush_interval=3.0)
    run_id = logger.wait_for_run(timeout=30)
    assert run_id is not None
    logger.flush()  # the flusher's last pass is now: its next comes an interval later
    began = time.monotonic()
    for step in range(2500):  # two and a half requests' worth
        logger.log_metric("loss", float(step), step=step)
    time.sleep(0.5)
    if time.monotonic() - began < 2.5:  # unless the machine stalled into the interval
        assert history(client, run_id, "loss") == []
    wait_until(lambda: len(history(client, run_id, "loss")) == 2500, timeout=30)
    assert client.get_run(run_id).info.status == "RUNNING"  # sent by the interval, not an end
    logger.end_run()
    assert history(client, run_id, "loss") == [(s, float(s)) for s in range(2500)]


@pytest.mark.parametrize(
    ("run_name", "tags", "expected", "reported"),
    [
        ("a\ud800b", {}, "a?b", "run name 'a\\ud800b'"),
        ("n" * 300, {}, "n" * 250, "truncated to MLflow's limit of 250"),
        ("a", {"mlflow.runName": "b"}, "a", "tag 'mlflow.runName'"),
        (None, {"mlflow.runName": "from the tag"}, "from the tag", None),
        (12345, {}, "12345", None),
    ],
)
def test_a_run_name_the_store_would_refuse_is_repaired_and_the_run_created(
    client: MlflowClient,
    spool_dir: Path,
    run_name: Any,
    tags: dict[str, str],
    expected: str,
    reported: str | None,
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = BatchLogger.start_run(run_name=run_name, tags=tags)
        logger.log_metric("m", 1.0, step=0)
        logger.log_param("p", "v")
        logger.end_run()
    assert logger.run_id is not None and not spool_files(spool_dir)
    run = client.get_run(logger.run_id)
    assert (run.info.run_name, run.info.status) == (expected, "FINISHED")
    assert run.data.tags["mlflow.runName"] == expected
    assert run.data.params == {"p": "v"} and history(client, logger.run_id, "m") == [(0, 1.0)]
    warned = [str(w.message) for w in caught if w.category is InvalidDataWarning]
    if reported is None:
        assert not warned
    else:
        [message] = warned
        assert reported in message


class _FirstCreationWaits:
    """The real client, whose first ``create_run`` lands only once ``release`` is set."""

    def __init__(self, real: MlflowClient) -> None:
        self.real = real
        self.entered = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()

    def create_run(self, *args: Any, **kwargs: Any) -> Any:
        if self.entered.is_set():
            return self.real.create_run(*args, **kwargs)
        self.entered.set()
        self.release.wait(30)
        try:
            return self.real.create_run(*args, **kwargs)
        finally:
            self.returned.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_slow_creation_a_flush_stopped_waiting_for_still_makes_one_run(
    client: MlflowClient, spool_dir: Path
) -> None:
    slow = _FirstCreationWaits(client)
    # Several requests at a time, as for a server: a replay could start beside the creation.
    logger = BatchLogger.start_run(run_name="slow", client=slow, max_in_flight=4)
    for step in range(10):
        logger.log_metric("m", float(step), step=step)
    assert slow.entered.wait(10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the timed-out flush says the data is spooled
        logger.flush(timeout=0.5)
        for step in range(10, 20):
            logger.log_metric("m", float(step), step=step)
        threading.Timer(1.0, slow.release.set).start()
        logger.end_run(timeout=30)
    assert slow.returned.wait(30)
    [run] = client.search_runs(["0"])
    assert run.info.run_id == logger.run_id and run.info.status == "FINISHED"
    assert history(client, run.info.run_id, "m") == [(step, float(step)) for step in range(20)]
    assert not spool_files(spool_dir)
