"""Run lifecycle against a real MLflow store (SQLite in a temp dir), through the toy plugin."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient

import autolog
from tests.core.batching.helpers import wait_until


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture
def toyfw(tracking: MlflowClient):
    autolog.autolog(frameworks=["toy"], extra_tags={"team": "core"})
    import toyfw

    return toyfw


def all_runs(client: MlflowClient, experiment: str = "0"):
    return client.search_runs([experiment], order_by=["attributes.start_time ASC"])


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_fit_creates_a_finished_run_with_params_metrics_and_tags(toyfw, tracking) -> None:
    toyfw.Model().fit(1, epochs=3, password="hunter2")
    (run,) = all_runs(tracking)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"epochs": "3", "password": "***"}
    assert history(tracking, run.info.run_id, "loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    tags = run.data.tags
    assert tags["autolog.plugin"] == "toy"
    assert tags["mlflow.autologging"] == "toy"
    assert tags["autolog.version"] == autolog.__version__
    assert tags["team"] == "core"
    assert "mlflow.user" in tags and "mlflow.source.name" in tags


def test_failed_and_killed_runs(toyfw, tracking) -> None:
    with pytest.raises(ValueError):
        toyfw.Model().fit("boom")
    with pytest.raises(KeyboardInterrupt):
        toyfw.Model().fit("interrupt")
    statuses = [r.info.status for r in all_runs(tracking)]
    assert statuses == ["FAILED", "KILLED"]


def test_the_users_active_run_is_used_and_left_open(toyfw, tracking) -> None:
    with mlflow.start_run() as user_run:
        toyfw.Model().fit(1, epochs=2)
        assert mlflow.active_run().info.run_id == user_run.info.run_id
        live = tracking.get_run(user_run.info.run_id)
        assert live.info.status == "RUNNING"
        assert live.data.tags["mlflow.autologging"] == "toy"
        assert history(tracking, user_run.info.run_id, "loss") == [(0, 1.0), (1, 0.5)]
    assert len(all_runs(tracking)) == 1


def test_mlflow_run_id_and_experiment_name_are_honoured(toyfw, tracking, monkeypatch) -> None:
    experiment_id = tracking.create_experiment("toy-experiment")
    run = tracking.create_run(experiment_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    toyfw.Model().fit(1)
    assert history(tracking, run.info.run_id, "loss") == [(0, 1.0)]
    assert tracking.get_run(run.info.run_id).info.status == "RUNNING"
    monkeypatch.delenv("MLFLOW_RUN_ID")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "toy-experiment")
    toyfw.Model().fit(1, epochs=2)
    runs = all_runs(tracking, experiment_id)
    assert len(runs) == 2
    assert runs[-1].data.params["epochs"] == "2"


def test_evaluate_after_fit_lands_in_the_same_run(toyfw, tracking) -> None:
    model = toyfw.Model()
    model.fit(1)
    model.evaluate(1)
    (run,) = all_runs(tracking)
    assert run.data.metrics["eval_accuracy"] == 0.75


def test_joined_runs_leave_no_logger_behind(toyfw, tracking) -> None:
    """Evaluations after a fit and fits in the user's run: a long sweep must not pile up."""
    from autolog.batching.flusher import ENGINE

    def live_runs() -> int:
        with ENGINE.lock:
            return len(ENGINE.runs)

    before = live_runs()
    model = toyfw.Model()
    model.fit(1)
    for _ in range(20):
        model.evaluate(1)
    with mlflow.start_run() as user_run:
        for _ in range(20):
            toyfw.Model().fit(1)
    wait_until(lambda: live_runs() <= before)  # retired as soon as the flusher gets to them
    first, joined = all_runs(tracking)
    assert first.data.metrics["eval_accuracy"] == 0.75
    assert joined.info.run_id == user_run.info.run_id
    assert joined.data.metrics["loss"] == 1.0


@pytest.mark.parametrize("broken", ["session.instance_runs.remember", "session.status_for"])
def test_a_failure_around_the_run_leaves_no_run_running(
    toyfw, tracking, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    """autolog's own bug while opening or ending a run: the run still ends."""
    from autolog import session

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in autolog")

    owner, name = (
        (session.instance_runs, "remember") if "remember" in broken else (session, "status_for")
    )
    monkeypatch.setattr(owner, name, fail)
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)  # report, as in production
    with pytest.warns(autolog.AutologWarning, match="a bug in autolog"):
        assert toyfw.Model().fit(1, epochs=2) == [1.0, 0.5]
    wait_until(lambda: all_runs(tracking))  # an unended run is still created, in the background
    (run,) = all_runs(tracking)
    assert run.info.status != "RUNNING"


def test_autolog_warms_up_the_first_run_without_touching_any_store(tmp_path: Path) -> None:
    """autolog() prepares the first run in the background (MLflow's client side, the
    run context, the installed-distribution map model packaging needs) but opens no store: the script may still call ``set_tracking_uri``,
    and MLflow's default ``./mlflow.db`` must not appear in the working directory."""
    import subprocess
    import sys

    script = """
import os, sys, threading, time
import autolog
autolog.autolog(frameworks=["toy"])
for thread in threading.enumerate():
    if thread.name == "autolog-warm-up":
        thread.join(60)
from mlflow.utils import requirements_utils
warmed = (
    "mlflow.tracking.context.registry" in sys.modules
    and requirements_utils._MODULES_TO_PACKAGES is not None
)
import mlflow
mlflow.set_tracking_uri("sqlite:///" + os.path.join(sys.argv[1], "elsewhere.db"))
import toyfw
toyfw.Model().fit(1, epochs=2)
runs = mlflow.MlflowClient().search_runs(["0"])
print(warmed, len(runs), runs[0].info.status, sorted(os.listdir(".")))
"""
    cwd = tmp_path / "work"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["AUTOLOG_SPOOL_DIR"] = str(tmp_path / "spool")
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    left = _left_by_mlflow_opening_a_store(tmp_path / "probe", env)
    assert done.stdout.strip().splitlines()[-1] == f"True 1 FINISHED {left}"


def _left_by_mlflow_opening_a_store(cwd: Path, env: dict[str, str]) -> list[str]:
    """What MLflow itself leaves in the working directory when it opens a SQLite store
    elsewhere: nothing with MLflow 3.17; 3.7 makes its default artifact root, ./mlruns."""
    import subprocess
    import sys

    cwd.mkdir()
    script = (
        "import os, sys, mlflow; "
        "mlflow.MlflowClient('sqlite:///' + os.path.join(sys.argv[1], 'p.db')).search_runs(['0']); "
        "print(sorted(os.listdir('.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(cwd.parent)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return list(ast.literal_eval(done.stdout.strip().splitlines()[-1]))


def _store_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An SQLite store that cannot be opened (a file stands where its folder goes) until
    ``tmp_path / "later"`` is removed, set as MLflow's tracking URI; and a spool dir."""
    (tmp_path / "later").write_text("a file where the store's folder goes: it cannot open")
    down = f"sqlite:///{tmp_path / 'later' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    spool = tmp_path / "spool"
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(spool))
    mlflow.set_tracking_uri(down)
    return down, spool


def _wait_for_the_spool_warning(said: Any) -> None:
    """The warning comes from the thread that met the failure: on a busy machine opening
    the broken store can outlast the end's wait, so the warning may follow it."""
    wait_until(lambda: any("spool" in str(w.message) for w in said), timeout=60)


def _back_and_synced(tmp_path: Path, spool: Path, down: str) -> tuple[MlflowClient, Any]:
    """The store of `_store_down` comes back, `autolog sync` delivers the spool: its one run."""
    from autolog.batching.sync import sync_spool

    (tmp_path / "later").unlink()
    report = sync_spool(spool, progress=False)
    assert report.ok, str(report)
    client = MlflowClient(down)
    (run,) = all_runs(client)
    return client, run


def test_evaluate_after_fit_is_one_run_when_the_store_was_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the store down, the fit's run exists only in its run log: the evaluate that
    follows joins it all the same, and `autolog sync` makes one run of both, once."""
    down, spool = _store_down(tmp_path, monkeypatch)
    try:
        autolog.autolog(frameworks=["toy"], silent=True)
        import toyfw

        model = toyfw.Model()
        model.fit(1, epochs=2)
        model.evaluate(1)
        from autolog.batching.flusher import ENGINE

        wait_until(lambda: not ENGINE.runs, timeout=30)  # both loggers closed
    finally:
        mlflow.set_tracking_uri(None)
    (tmp_path / "later").unlink()  # the store comes back
    from autolog.batching.sync import sync_spool

    report = sync_spool(spool, progress=False)
    assert report.ok, str(report)
    client = MlflowClient(down)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    assert history(client, run.info.run_id, "loss") == [(0, 1.0), (1, 0.5)]
    assert run.data.metrics["eval_accuracy"] == 0.75
    assert sync_spool(spool, progress=False).files == 0


def test_a_dataset_logged_while_the_store_is_down_arrives_with_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dataset inputs go through the run log like every other write: logged while the
    store cannot be opened, they reach the run when `autolog sync` delivers it."""
    import numpy as np

    from autolog.mlflow_backend import MlflowBackend

    down, spool = _store_down(tmp_path, monkeypatch)
    try:
        features = np.arange(40, dtype="float32").reshape(10, 4)
        # Opening the sink starts creating the run: the warning can come at once.
        with pytest.warns(match="spool") as said:
            sink = MlflowBackend().open(None, {})
            sink.log_dataset(features, context="train", targets=np.arange(10))
            sink.log_metric("loss", 0.5, step=0)
            sink.end_run("FINISHED", timeout=5)
            _wait_for_the_spool_warning(said)
    finally:
        mlflow.set_tracking_uri(None)
    _, run = _back_and_synced(tmp_path, spool, down)
    [entry] = run.inputs.dataset_inputs
    assert entry.dataset.digest and entry.dataset.source_type == "code"
    assert {tag.key: tag.value for tag in entry.tags} == {"mlflow.data.context": "train"}
    assert run.data.metrics == {"loss": 0.5}


def test_a_model_logged_while_the_store_is_down_becomes_a_logged_model_with_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model packaged while the store cannot be opened waits in the run log; `autolog
    sync` registers it as the run's MLflow 3 LoggedModel, which loads by its id."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from autolog.mlflow_backend import MlflowBackend

    down, spool = _store_down(tmp_path, monkeypatch)
    x = np.arange(20, dtype="float64").reshape(10, 2)
    model = LinearRegression().fit(x, x.sum(axis=1))
    try:
        with pytest.warns(match="spool") as said:
            sink = MlflowBackend().open(None, {})
            sink.log_metric("score", 1.0, step=0)
            sink.log_model("sklearn", lambda: model, "model", input_example=x[:2])
            sink.end_run("FINISHED", timeout=10)
            _wait_for_the_spool_warning(said)
    finally:
        mlflow.set_tracking_uri(None)
    client, run = _back_and_synced(tmp_path, spool, down)
    [logged] = client.search_logged_models(experiment_ids=["0"])
    assert logged.source_run_id == run.info.run_id and logged.name == "model"
    assert str(logged.status) in ("READY", "LoggedModelStatus.READY")
    mlflow.set_tracking_uri(down)
    try:
        loaded = mlflow.sklearn.load_model(f"models:/{logged.model_id}")
    finally:
        mlflow.set_tracking_uri(None)
    assert np.allclose(loaded.predict(x), model.predict(x))
    assert [o.model_id for o in run.outputs.model_outputs] == [logged.model_id]
    assert [m.key for m in logged.metrics or []] == ["score"]


def test_a_model_that_takes_long_to_package_is_in_the_store_when_the_run_ends(
    tracking: MlflowClient,
) -> None:
    """The end of a call's run waits `END_OF_RUN_TIMEOUT` from the last sign of progress,
    not from its start: a model whose packaging outlasts it (a busy machine, a big model)
    is in the store, loadable, when the run's end returns, as with MLflow's autolog."""
    import time

    import numpy as np
    from sklearn.linear_model import LinearRegression

    from autolog import session
    from autolog.mlflow_backend import MlflowBackend

    x = np.arange(20, dtype="float64").reshape(10, 2)
    model = LinearRegression().fit(x, x.sum(axis=1))

    def slow_loader() -> LinearRegression:
        time.sleep(session.END_OF_RUN_TIMEOUT + 2)
        return model

    sink = MlflowBackend().open(None, {})
    sink.log_metric("score", 1.0, step=0)
    sink.log_model("sklearn", slow_loader, "model", input_example=x[:2])
    began = time.monotonic()
    sink.end_run("FINISHED", timeout=session.END_OF_RUN_TIMEOUT)
    assert time.monotonic() - began > session.END_OF_RUN_TIMEOUT  # it did wait past it
    (run,) = all_runs(tracking)
    assert run.info.status == "FINISHED"
    [logged] = tracking.search_logged_models(experiment_ids=["0"])
    assert logged.source_run_id == run.info.run_id
    loaded = mlflow.sklearn.load_model(f"models:/{logged.model_id}")
    assert np.allclose(loaded.predict(x), model.predict(x))


def test_the_end_of_a_run_gives_up_on_a_store_that_stops_answering(
    tracking: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Patience is for a store that answers: once a request hangs, the end of the run
    waits `END_OF_RUN_TIMEOUT` without progress, leaves the rest to the run log and
    returns, however long the request would hang."""
    import threading
    import time

    from autolog import session
    from autolog.batching import transport
    from autolog.mlflow_backend import MlflowBackend

    release = threading.Event()
    original = transport.send_chunk

    def hanging(*args: Any, **kwargs: Any) -> Any:
        release.wait(120)
        return original(*args, **kwargs)

    sink = MlflowBackend().open(None, {})
    sink.log_metric("score", 1.0, step=0)
    sink.send_pending()
    time.sleep(0.5)  # the run is created; the metric's request is the one that hangs
    monkeypatch.setattr(transport, "send_chunk", hanging)
    sink.log_metric("score", 2.0, step=1)
    began = time.monotonic()
    try:
        sink.end_run("FINISHED", timeout=session.END_OF_RUN_TIMEOUT)
        waited = time.monotonic() - began
    finally:
        release.set()
    assert session.END_OF_RUN_TIMEOUT <= waited < session.END_OF_RUN_TIMEOUT + 5
