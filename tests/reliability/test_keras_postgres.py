"""Keras autologging into a PostgreSQL-backed ``mlflow server``: one complete run, then
8 fits in threads and 4 in processes at once, each logging every step.

MLflow's SQL store takes row locks on ``latest_metrics`` for every ``log_batch``; many runs
writing at once is where a store-side deadlock or a lost update would show. Each run must
come back complete: the epoch metrics equal to ``History.history``, one batch metric per
optimizer step equal to what the user's own callback saw, nothing missing, nothing twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import _support

pytestmark = pytest.mark.server

WORKER = Path(__file__).with_name("_keras_worker.py")


def test_fit_logs_the_complete_run(tracking: Any) -> None:
    import autolog

    _support.keras_module()
    autolog.autolog(frameworks=["keras"], log_every_n_steps=1, log_models=True)
    x, y = _support.make_data(256)
    model = _support.build_mlp()
    recorder = _support.batch_recorder()
    history = model.fit(
        x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[recorder]
    )
    (found,) = tracking.runs()
    run = tracking.run(found.info.run_id)
    checked = _support.assert_complete_run(
        run, _support.plain_history(history), recorder.batches, epochs=3, batch_size=16
    )
    assert len(recorder.batches) == 3 * 12  # 192 training rows / 16
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert run.params["validation_split"] == "0.25"
    assert run.params["dataset_train_shape"] == "(192, 20)"
    assert run.params["total_params"] == str(model.count_params())
    # One copy of the model: a LoggedModel of the run, not run artifacts.
    assert "model_summary.txt" in run.artifacts and "model.keras" not in run.artifacts
    # The logged model is the trained one.
    import mlflow

    (logged,) = mlflow.search_logged_models(
        experiment_ids=[found.info.experiment_id], output_format="list"
    )
    assert logged.source_run_id == run.run_id
    keras = _support.keras_module()
    flavor = mlflow.keras if int(keras.__version__.split(".")[0]) >= 3 else mlflow.tensorflow
    reloaded = flavor.load_model(f"models:/{logged.model_id}")
    import numpy as np

    np.testing.assert_allclose(
        reloaded.predict(x[:8], verbose=0), model.predict(x[:8], verbose=0), rtol=1e-6
    )
    _support.record("reliability", "keras_postgres_complete_run", {"values_checked": checked})


def test_eight_concurrent_fits_in_threads(tracking: Any) -> None:
    import autolog
    from autolog import session

    _support.keras_module()
    autolog.autolog(frameworks=["keras"], log_every_n_steps=1, log_models=False)
    epochs, count = 3, 8
    datasets = [_support.make_data(160, seed=i) for i in range(count)]
    models = [_support.build_mlp(seed=i) for i in range(count)]
    results: dict[int, Any] = {}
    errors: list[tuple[int, BaseException]] = []
    start = threading.Barrier(count)

    def train(i: int) -> None:
        try:
            recorder = _support.batch_recorder()
            x, y = datasets[i]
            start.wait(timeout=60)
            history = models[i].fit(
                x,
                y,
                epochs=epochs,
                batch_size=16,
                validation_split=0.25,
                verbose=0,
                callbacks=[recorder],
            )
            results[i] = (
                session.run_for_instance(models[i]),
                _support.plain_history(history),
                recorder.batches,
            )
        except BaseException as exc:
            errors.append((i, exc))

    threads = [threading.Thread(target=train, args=(i,), name=f"fit-{i}") for i in range(count)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 240
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"deadlock: {hung} still running after 240 s"
    assert not errors, errors
    elapsed = time.perf_counter() - began

    run_ids = {results[i][0] for i in range(count)}
    assert len(run_ids) == count and None not in run_ids  # one run per fit
    assert {r.info.run_id for r in tracking.runs()} == run_ids
    checked = 0
    for i in range(count):
        run_id, history, batches = results[i]
        assert len(batches) == epochs * 8  # 120 training rows / 16
        checked += _support.assert_complete_run(
            tracking.run(run_id), history, batches, epochs=epochs, batch_size=16
        )
    _support.record(
        "reliability",
        "keras_postgres_threads",
        {
            "runs": count,
            "values_checked": checked,
            "values_lost": 0,
            "duplicates": 0,
            "seconds": round(elapsed, 1),
        },
    )


def test_four_concurrent_fits_in_processes(tracking: Any) -> None:
    epochs, count = 3, 4
    env = tracking.env()
    env["AUTOLOG_TESTING"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_support.ROOT), env.get("PYTHONPATH", "")) if p
    )
    began = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(seed), "160", str(epochs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=_support.ROOT,
        )
        for seed in range(count)
    ]
    outputs: list[tuple[int, str, str]] = []
    deadline = time.monotonic() + 300
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append((proc.returncode, out, err))
    except subprocess.TimeoutExpired:
        pytest.fail("deadlock: a fit process did not finish within 300 s")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    elapsed = time.perf_counter() - began

    results = []
    for code, out, err in outputs:
        assert code == 0, err[-3000:]
        line = next(line for line in out.splitlines() if line.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT ") :]))
    assert len({r["pid"] for r in results}) == count
    run_ids = {r["run_id"] for r in results}
    assert len(run_ids) == count and None not in run_ids
    assert {r.info.run_id for r in tracking.runs()} == run_ids
    checked = 0
    for result in results:
        checked += _support.assert_complete_run(
            tracking.run(result["run_id"]),
            result["history"],
            result["batches"],
            epochs=epochs,
            batch_size=16,
        )
    assert _support.spool_files(tracking.spool) == []  # everything went straight to the store
    _support.record(
        "reliability",
        "keras_postgres_processes",
        {
            "runs": count,
            "values_checked": checked,
            "values_lost": 0,
            "duplicates": 0,
            "seconds": round(elapsed, 1),
        },
    )
