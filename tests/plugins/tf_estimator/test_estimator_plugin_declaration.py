"""The plugin as discovery sees it: importable without TensorFlow, gated on versions."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

import autolog
from autolog_tf_estimator import EstimatorOptions, EstimatorPlugin
from autolog_tf_estimator.distributed import is_chief

HAS_ESTIMATOR = importlib.util.find_spec("tensorflow_estimator") is not None


def test_importing_the_plugin_does_not_import_tensorflow() -> None:
    code = (
        "import sys, json, autolog_tf_estimator, autolog_tf_estimator.handlers;"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('tensorflow'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_declaration() -> None:
    assert EstimatorPlugin.name == "tf_estimator"
    assert EstimatorPlugin.framework == "tensorflow-estimator"
    targets = {p.target for p in EstimatorPlugin.patches}
    estimator = "tensorflow_estimator.python.estimator.estimator:Estimator"
    assert {f"{estimator}.train", f"{estimator}.evaluate", f"{estimator}.export_saved_model"} <= (
        targets
    )
    assert "tensorflow_estimator.python.estimator.training:train_and_evaluate" in targets
    # Re-exports of train_and_evaluate differ per release: never an error when absent.
    exports = [p for p in EstimatorPlugin.patches if p.target.endswith(":train_and_evaluate")]
    assert sum(not p.optional for p in exports) == 1
    # Every public entry point owns a run; the private model_fn call only joins one.
    (inner,) = [p for p in EstimatorPlugin.patches if not p.owns_run]
    assert inner.target == f"{estimator}._call_model_fn"
    assert inner.nested == "join" and inner.optional


def test_options_defaults_and_validation() -> None:
    options = EstimatorPlugin.make_options({"log_tensorboard": True})
    assert isinstance(options, EstimatorOptions)
    assert options.log_tensorboard and options.log_checkpoint and options.log_summaries
    with pytest.raises(TypeError, match="valid options"):
        EstimatorPlugin.make_options({"log_tensorbaord": True})
    with pytest.raises(TypeError, match="log_every_n_steps"):
        EstimatorPlugin.make_options({"log_every_n_steps": -1})
    with pytest.raises(TypeError, match="log_tensorboard"):
        EstimatorPlugin.make_options({"log_tensorboard": "yes"})


def test_unknown_option_through_autolog_names_the_valid_ones() -> None:
    with pytest.raises(TypeError, match="log_tensorboard"):
        autolog.autolog(frameworks=["tf_estimator"], tf_estimator={"tensorboard": True})


@pytest.mark.skipif(HAS_ESTIMATOR, reason="checks the TF >= 2.16 environment")
def test_reported_unavailable_without_tf_estimator(recwarn: pytest.WarningsRecorder) -> None:
    info = autolog.available_plugins()["tf_estimator"]
    assert not info.available
    assert any("tensorflow-estimator" in reason for reason in info.unmet)
    # Enabling everything quietly leaves this plugin out.
    enabled = autolog.autolog()
    assert "tf_estimator" not in enabled
    assert not [w for w in recwarn if "tf_estimator" in str(w.message)]


@pytest.mark.skipif(not HAS_ESTIMATOR, reason="needs tensorflow-estimator")
def test_reported_available_with_tf_estimator() -> None:
    info = autolog.available_plugins()["tf_estimator"]
    assert info.available, info.state
    assert info.framework_version is not None


# Distributed: who writes -------------------------------------------------------------


def _tf_config(task_type: str, index: int = 0, *, chief: bool = True) -> dict[str, str]:
    cluster = {"worker": ["w0:1", "w1:1"], "ps": ["p0:1"], "evaluator": ["e0:1"]}
    if chief:
        cluster["chief"] = ["c0:1"]
    config = {"cluster": cluster, "task": {"type": task_type, "index": index}}
    return {"TF_CONFIG": json.dumps(config)}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, True),
        ({"TF_CONFIG": ""}, True),
        ({"TF_CONFIG": "{not json"}, True),
        ({"TF_CONFIG": json.dumps({"task": {"type": "worker", "index": 3}})}, True),
        (_tf_config("chief"), True),
        (_tf_config("master"), True),
        (_tf_config("worker", 0), False),
        (_tf_config("worker", 1), False),
        (_tf_config("worker", 0, chief=False), True),
        (_tf_config("worker", 1, chief=False), False),
        (_tf_config("ps"), False),
        (_tf_config("evaluator"), False),
        (_tf_config("evaluator", chief=False), False),
    ],
)
def test_is_chief(environ: dict[str, str], expected: bool) -> None:
    assert is_chief(environ) is expected


def test_plugin_is_chief_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CONFIG", _tf_config("ps")["TF_CONFIG"])
    assert EstimatorPlugin().is_chief() is False
    monkeypatch.delenv("TF_CONFIG")
    assert EstimatorPlugin().is_chief() is True
