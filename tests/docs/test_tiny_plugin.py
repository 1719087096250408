"""The plugin-author guide's walk-through plugin (``docs/snippets/tiny_plugin.py``) on its
stand-in framework (``docs/snippets/tinyfw``), as a plugin's own tests would check it:
its run in a real SQLite store (params, per-round metric history, dataset, a LoggedModel
that loads as a pyfunc), ``log_every_n_steps`` and ``log_models``, the conformance kit.
The guide's page runs the same plugin in its snippets (tests/docs/test_docs.py).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("sklearn")  # the stand-in trains a scikit-learn classifier

import autolog
import autolog.testing

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "docs" / "snippets"


def _forget_tinyfw() -> None:
    for name in [m for m in sys.modules if m == "tinyfw" or m.startswith("tinyfw.")]:
        del sys.modules[name]


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The plugin module, loaded from its file, with tinyfw importable (not imported)."""
    monkeypatch.syspath_prepend(str(SNIPPETS))
    _forget_tinyfw()
    spec = importlib.util.spec_from_file_location("tiny_plugin", SNIPPETS / "tiny_plugin.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "tinyfw" not in sys.modules  # importing a plugin never imports its framework
    yield module
    autolog.disable()
    _forget_tinyfw()


@pytest.fixture(scope="module")
def digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _recorder() -> tuple[Any, dict[int, dict[str, float]]]:
    """A user's own callback, recording what tinyfw reported after each round."""
    import tinyfw

    seen: dict[int, dict[str, float]] = {}

    class Recorder(tinyfw.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            seen[epoch] = {f"train-{k}": v[-1] for k, v in evals_log["train"].items()}
            return False

    return Recorder(), seen


def _logged_model(run_id: str, patience: float = 60.0) -> Any:
    """The run's one LoggedModel, once READY.

    The end of a run waits at most 5 s for the store; on a busy machine the first model a
    process packages (flavor import, signature from the input example) can take longer,
    and is then delivered from the run log moments later. The guarantee is delivery, not
    delivery within 5 s: wait for it, boundedly.
    """
    import mlflow

    deadline = time.monotonic() + patience
    while True:
        models = mlflow.search_logged_models(
            experiment_ids=["0"], filter_string=f"source_run_id = '{run_id}'", output_format="list"
        )
        if (models and str(models[0].status) == "READY") or time.monotonic() > deadline:
            (model,) = models
            return model
        time.sleep(0.2)


def test_a_run_in_a_sqlite_store(
    tiny: ModuleType, digits: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import numpy as np

    monkeypatch.chdir(tmp_path)  # the store's artifacts go to ./mlruns
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    X, y = digits
    try:
        autolog.autolog(plugins=[tiny.TinyPlugin])
        import tinyfw

        recorder, seen = _recorder()
        model = tinyfw.train({"alpha": 1e-4, "penalty": "l2"}, X, y, 5, callbacks=[recorder])

        (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
        assert run.info.status == "FINISHED"
        assert run.data.params == {"alpha": "0.0001", "penalty": "l2", "num_boost_round": "5"}
        client = mlflow.MlflowClient()
        for metric in ("train-logloss", "train-error"):
            history = client.get_metric_history(run.info.run_id, metric)
            assert [(m.step, m.value) for m in history] == [
                (step, pytest.approx(values[metric])) for step, values in seen.items()
            ]
        assert list(seen) == [0, 1, 2, 3, 4]  # the user's callback ran every round too
        assert seen[4]["train-logloss"] < seen[0]["train-logloss"]  # it did learn

        (dataset,) = run.inputs.dataset_inputs
        assert {t.key: t.value for t in dataset.tags} == {"mlflow.data.context": "train"}
        logged = _logged_model(run.info.run_id)
        (output,) = mlflow.get_run(run.info.run_id).outputs.model_outputs
        assert logged.model_id == output.model_id and logged.source_run_id == run.info.run_id
        assert str(logged.status) == "READY"
        # The run's final metric values are linked to the model.
        assert {m.key: m.value for m in logged.metrics} == {
            k: pytest.approx(v) for k, v in seen[4].items()
        }
        loaded = mlflow.pyfunc.load_model(f"models:/{output.model_id}")
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        info = mlflow.models.get_model_info(f"models:/{output.model_id}")
        assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 64]
    finally:
        mlflow.set_tracking_uri(None)


def test_log_every_n_steps_and_log_models(tiny: ModuleType, digits: Any) -> None:
    X, y = digits
    with autolog.testing.capture() as store:
        autolog.autolog(plugins=[tiny.TinyPlugin], log_every_n_steps=2, log_models=False)
        import tinyfw

        tinyfw.train({}, X, y, num_boost_round=5)
        run = store.last_run()
        assert [step for step, _ in run.metric_history("train-logloss")] == [0, 2, 4]
        assert run.models == []
        assert run.params == {"num_boost_round": "5"}


def test_the_users_callbacks_stay_as_given(tiny: ModuleType, digits: Any) -> None:
    X, y = digits
    with autolog.testing.capture():
        autolog.autolog(plugins=[tiny.TinyPlugin], log_models=False)
        import tinyfw

        recorder, seen = _recorder()
        callbacks = (recorder,)
        tinyfw.train({}, X, y, num_boost_round=2, callbacks=callbacks)
        assert callbacks == (recorder,) and list(seen) == [0, 1]


def test_passes_the_conformance_checks(tiny: ModuleType, digits: Any) -> None:
    X, y = digits

    def train_once() -> None:
        import tinyfw

        tinyfw.train({}, X[:50], y[:50], num_boost_round=1)

    with autolog.testing.capture():
        report = autolog.testing.check_plugin(tiny.TinyPlugin, exercise=train_once)
    report.assert_ok()


def test_the_plugin_module_imports_neither_tinyfw_nor_mlflow() -> None:
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(SNIPPETS / 'tiny_plugin.py')!r})\n"
        "print(sorted(m for m in ('tinyfw', 'sklearn', 'mlflow') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_the_guide_quotes_the_sizes_the_tool_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sizes in the guide and the example's README are tools/plugin_size.py's, now."""
    spec = importlib.util.spec_from_file_location("plugin_size", ROOT / "tools" / "plugin_size.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "plugin_size", tool)  # its dataclass looks itself up
    spec.loader.exec_module(tool)
    sklearn = tool.size_of("examples/plugins/autolog-sklearn/autolog_sklearn/__init__.py")
    hooks = tool.size_of("examples/plugins/autolog-sklearn/autolog_sklearn/__init__.py:hooks")
    tiny = tool.size_of("docs/snippets/tiny_plugin.py")
    guide = (ROOT / "docs" / "writing-a-plugin.md").read_text(encoding="utf-8")
    for size, extra in ((sklearn, f" (hooks: {hooks.code})"), (tiny, "")):
        quoted = f"{size.lines} lines, {size.not_blank_or_comment}, {size.code} of code{extra} |"
        assert quoted in guide, f"the guide's table should say {quoted!r}"
    assert f"{tiny.lines} lines, {tiny.code} of code" in guide  # section 7
    readme = (ROOT / "examples" / "plugins" / "autolog-sklearn" / "README.md").read_text()
    assert f"is {sklearn.code} lines of code\n({sklearn.lines} with comments" in readme
