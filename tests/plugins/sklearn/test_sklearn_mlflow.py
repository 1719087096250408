"""The scikit-learn plugin end to end: real models on load_digits, a real SQLite MLflow store.

Writes go through the batching layer and the model is packaged off-thread by the core;
the checks read everything back with ``MlflowClient`` and ``mlflow.sklearn.load_model``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("mlflow.sklearn")

import autolog


def _runs(client: Any) -> list[Any]:
    return client.search_runs(["0"], order_by=["attributes.start_time ASC"])


def test_a_trained_model_is_tracked_and_loadable(mlflow_store: Any, digits: Any) -> None:
    import mlflow
    import mlflow.artifacts
    import mlflow.sklearn
    from sklearn.ensemble import RandomForestClassifier

    X, y = digits
    assert autolog.autolog(frameworks=["sklearn"]) == ["sklearn"]
    model = RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0).fit(X, y)

    (run,) = _runs(mlflow_store)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["n_estimators"] == "10"
    assert params["max_depth"] == "8"
    assert params["random_state"] == "0"
    assert params["criterion"] == "gini"
    assert set(params) == set(model.get_params(deep=False))
    assert run.data.metrics["training_score"] == pytest.approx(model.score(X, y))
    tags = run.data.tags
    assert tags["mlflow.autologging"] == "sklearn"
    assert tags["autolog.plugin"] == "sklearn"
    assert tags["estimator_name"] == "RandomForestClassifier"

    # The model is an MLflow 3 LoggedModel of the run, not a run artifact; the run's one
    # artifact is the forest's feature importances.
    assert [a.path for a in mlflow_store.list_artifacts(run.info.run_id)] == [
        "feature_importance.json"
    ]
    importances = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/feature_importance.json")
    assert list(importances) == [str(i) for i in range(X.shape[1])]
    np.testing.assert_allclose(list(importances.values()), model.feature_importances_)
    (logged,) = mlflow.search_logged_models(experiment_ids=["0"], output_format="list")
    assert logged.source_run_id == run.info.run_id
    assert logged.name == "model" and str(logged.status) == "READY"
    assert [o.model_id for o in run.outputs.model_outputs] == [logged.model_id]
    assert logged.params["n_estimators"] == "10"
    # The run's final metrics show on the model's page.
    assert {m.key: m.value for m in logged.metrics} == {
        "training_score": pytest.approx(model.score(X, y))
    }
    uri = f"models:/{logged.model_id}"
    requirements = mlflow.artifacts.load_text(f"{logged.artifact_location}/requirements.txt")
    assert "scikit-learn==" in requirements and "cloudpickle==" in requirements
    loaded = mlflow.sklearn.load_model(uri)
    assert type(loaded) is RandomForestClassifier
    assert (loaded.predict(X) == model.predict(X)).all()
    assert (mlflow.pyfunc.load_model(uri).predict(X) == model.predict(X)).all()
    # Signature and input example: from five rows of the training data.
    info = mlflow.models.get_model_info(uri)
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 64]
    assert info.saved_input_example_info["type"] == "ndarray"
    example = mlflow.models.Model.load(uri).load_input_example()
    np.testing.assert_array_equal(example, X[:5])

    # The training data is a dataset input of the run, with MLflow's digest and a schema.
    (dataset_input,) = run.inputs.dataset_inputs
    assert {t.key: t.value for t in dataset_input.tags} == {"mlflow.data.context": "train"}
    assert dataset_input.dataset.digest == mlflow.data.from_numpy(X, targets=y).digest
    assert dataset_input.dataset.schema


def test_a_dataframe_is_logged_with_its_columns(mlflow_store: Any, digits: Any) -> None:
    import mlflow
    import pandas as pd
    from sklearn.linear_model import Ridge

    X, y = digits
    frame = pd.DataFrame(X[:200], columns=[f"px{i}" for i in range(X.shape[1])])
    target = pd.Series(y[:200], name="digit")
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    Ridge().fit(frame, target)
    (run,) = _runs(mlflow_store)
    (dataset_input,) = run.inputs.dataset_inputs
    expected = mlflow.data.from_pandas(frame.assign(digit=target), targets="digit")
    assert dataset_input.dataset.digest == expected.digest
    assert '"px0"' in dataset_input.dataset.schema and '"digit"' in dataset_input.dataset.schema


def test_grid_search_over_a_pipeline_logs_exactly_one_run(mlflow_store: Any, digits: Any) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = digits
    autolog.autolog(frameworks=["sklearn"])
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=200))])
    search = GridSearchCV(pipe, {"clf__C": [0.1, 1.0]}, cv=2).fit(X, y)

    (run,) = _runs(mlflow_store)  # 4 fold fits + 1 refit, 3 estimators each: all silent
    assert run.info.status == "FINISHED"
    assert run.data.tags["estimator_name"] == "GridSearchCV"
    assert run.data.params["best_clf__C"] == str(search.best_params_["clf__C"])
    assert run.data.params["cv"] == "2"
    assert run.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert run.data.metrics["training_score"] == pytest.approx(search.score(X, y))
    (logged,) = mlflow.search_logged_models(experiment_ids=["0"], output_format="list")
    assert logged.source_run_id == run.info.run_id
    loaded = mlflow.sklearn.load_model(f"models:/{logged.model_id}")
    assert (loaded.predict(X) == search.predict(X)).all()


def test_into_the_users_active_run(mlflow_store: Any, digits: Any) -> None:
    import mlflow
    from sklearn.linear_model import Ridge

    X, y = digits
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    with mlflow.start_run() as user_run:
        Ridge(alpha=0.5).fit(X, y)
    (run,) = _runs(mlflow_store)
    assert run.info.run_id == user_run.info.run_id
    assert run.data.params["alpha"] == "0.5"
    assert "training_score" in run.data.metrics
    assert mlflow_store.list_artifacts(run.info.run_id) == []


def test_next_to_mlflows_own_sklearn_autolog(mlflow_store: Any, digits: Any, tmp_path: Any) -> None:
    # In a fresh interpreter: the line is said once per process, and this one may have
    # said it already.
    code = textwrap.dedent(
        """
        import warnings

        import autolog
        import mlflow.sklearn
        from sklearn.datasets import load_digits
        from sklearn.linear_model import Ridge

        X, y = load_digits(return_X_y=True)
        autolog.autolog(frameworks=["sklearn"])
        mlflow.sklearn.autolog(log_models=False, log_datasets=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Ridge(alpha=0.5).fit(X, y)
            Ridge(alpha=2.0).fit(X, y)
        print("warnings:", [str(w.message) for w in caught])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # MLflow's own artifacts go to ./mlruns
    )
    assert out.returncode == 0, out.stderr
    runs = _runs(mlflow_store)
    assert [r.data.params["alpha"] for r in runs] == ["0.5", "2.0"]
    assert all(r.data.tags["mlflow.autologging"] == "sklearn" for r in runs)
    assert not any("autolog.plugin" in r.data.tags for r in runs)
    assert all("training_r2_score" in r.data.metrics for r in runs)  # MLflow's metrics
    autolog_lines = [line for line in out.stderr.splitlines() if line.startswith("autolog: ")]
    assert autolog_lines == [
        "autolog: MLflow's own autologging logs scikit-learn here (mlflow.sklearn.autolog() "
        "is on), so autolog's sklearn plugin leaves it alone; to have autolog log "
        "scikit-learn instead, call mlflow.sklearn.autolog(disable=True) first"
    ]
    assert out.stdout.splitlines()[-1] == "warnings: []"


def test_the_end_of_a_run_autolog_created_says_where_it_is(
    mlflow_store: Any, digits: Any, capfd: Any, tmp_path: Any
) -> None:
    import mlflow
    from sklearn.linear_model import Ridge

    X, y = digits
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    Ridge().fit(X, y)
    (run,) = _runs(mlflow_store)
    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert capfd.readouterr().err.splitlines() == [
        f"autolog: run {run.info.run_id} (FINISHED) is in {store}; to look at it run: "
        f"mlflow ui --backend-store-uri {store} and open "
        f"http://127.0.0.1:5000/#/runs/{run.info.run_id}"
    ]
    # Not for the user's own run, nor under silent=True.
    with mlflow.start_run():
        Ridge().fit(X, y)
    autolog.autolog(frameworks=["sklearn"], log_models=False, silent=True)
    Ridge().fit(X, y)
    assert capfd.readouterr().err == ""
