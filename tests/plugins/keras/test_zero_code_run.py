"""`autolog run` on the Keras example with its autolog line removed: the run is complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "keras_digits.py"


def test_autolog_run_logs_an_unmodified_script(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    source = EXAMPLE.read_text()
    stripped = "\n".join(
        line
        for line in source.splitlines()
        if line.strip() not in ("import autolog", "autolog.autolog()")
    )
    code_lines = [line.strip() for line in stripped.splitlines()]
    assert "import autolog" not in code_lines and "autolog.autolog()" not in code_lines
    script = tmp_path / "train.py"
    script.write_text(stripped)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "AUTOLOG_SPOOL_DIR": str(tmp_path / "spool"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "autolog",
            "run",
            "--frameworks",
            "keras",
            "--",
            sys.executable,
            str(script),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs(["0"])
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["epochs"] == "15" and params["batch_size"] == "32"
    assert params["validation_split"] == "0.1"
    assert tags["mlflow.autologging"] == "keras"
    epochs_run = len(client.get_metric_history(run.info.run_id, "loss"))
    assert epochs_run >= 1
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == epochs_run
    assert "eval_accuracy" in metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"model_summary.txt"}  # the model is a LoggedModel, not an artifact
    (logged,) = client.search_logged_models(["0"])
    assert logged.source_run_id == run.info.run_id
    linked = {m.key for m in client.get_logged_model(logged.model_id).metrics}
    assert {"loss", "val_accuracy", "eval_accuracy"} <= linked
    contexts = {
        tag.value
        for dataset_input in run.inputs.dataset_inputs
        for tag in dataset_input.tags
        if tag.key == "mlflow.data.context"
    }
    assert contexts == {"train", "validation", "eval"}
