"""System metrics follow MLflow's switch for the runs autolog creates (real SQLite store).

``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` (what ``mlflow.enable_system_metrics_logging()``
sets) on: MLflow's ``SystemMetricsMonitor`` samples while the run lasts and its
``system/...`` values land in the run. Off: none. Without psutil: one line, no crash.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autolog
from autolog.registry import registry


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    # Samples every 0.1 s instead of MLflow's 10 s, so a short training gets several.
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.1")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    yield mlflow.MlflowClient(uri)
    registry.disable_all()
    mlflow.set_tracking_uri(None)


def _train(seconds: float) -> Any:
    """A toy fit of ten epochs lasting ``seconds``, in a run autolog creates; the run."""
    import mlflow
    import toyfw

    autolog.autolog(frameworks=["toy"])
    toyfw.Model().fit(1, epochs=10, callbacks=[lambda epoch, logs: time.sleep(seconds / 10)])
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    return run


def _system(client: Any, run: Any) -> dict[str, list[int]]:
    return {
        key: [m.step for m in client.get_metric_history(run.info.run_id, key)]
        for key in run.data.metrics
        if key.startswith("system/")
    }


@pytest.mark.skipif(importlib.util.find_spec("psutil") is None, reason="needs psutil")
def test_a_run_autolog_creates_has_system_metrics_when_mlflow_says_so(
    tracking: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    mlflow.enable_system_metrics_logging()  # sets the variable, as a user would
    run = _train(1.5)
    assert run.info.status == "FINISHED"
    system = _system(tracking, run)
    assert "system/cpu_utilization_percentage" in system
    assert "system/system_memory_usage_megabytes" in system
    steps = system["system/cpu_utilization_percentage"]
    assert len(steps) >= 3 and steps == list(range(len(steps)))
    assert run.data.metrics["loss"] == pytest.approx(0.1)  # the training's own values too
    # The monitor stopped with the run: nothing more arrives afterwards.
    time.sleep(0.5)
    assert _system(tracking, tracking.get_run(run.info.run_id)) == system
    assert "psutil is not" not in capfd.readouterr().err


def test_no_system_metrics_when_the_switch_is_off(
    tracking: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)
    run = _train(0.5)
    assert run.info.status == "FINISHED"
    assert _system(tracking, run) == {}
    assert "loss" in run.data.metrics


def test_without_psutil_one_line_and_the_run_goes_on(
    tracking: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from autolog.mlflow_backend import SystemMetrics

    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.setattr(SystemMetrics, "_warned_psutil", False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "psutil" else real_find_spec(name, *a),
    )
    run = _train(0.2)
    assert run.info.status == "FINISHED"
    import toyfw

    toyfw.Model().fit(1, epochs=2)  # a second run: no second line
    assert _system(tracking, run) == {}
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "psutil is not" in line]
    assert lines == [
        "autolog: MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING is on but psutil is not installed, "
        "so runs get no system metrics; pip install psutil"
    ]
