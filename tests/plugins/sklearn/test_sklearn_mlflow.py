"""The scikit-learn plugin end to end: real models on load_digits, a real SQLite MLflow store.

Writes go through the batching layer and the model is packaged off-thread by the core;
the checks read everything back with ``MlflowClient`` and ``mlflow.sklearn.load_model``.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("mlflow.sklearn")

import autolog


def _runs(client: Any) -> list[Any]:
    return client.search_runs(["0"], order_by=["attributes.start_time ASC"])


def test_a_trained_model_is_tracked_and_loadable(mlflow_store: Any, digits: Any) -> None:
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

    artifacts = {a.path for a in mlflow_store.list_artifacts(run.info.run_id, "model")}
    assert "model/MLmodel" in artifacts
    requirements = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/model/requirements.txt")
    assert "scikit-learn==" in requirements and "cloudpickle==" in requirements
    loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert type(loaded) is RandomForestClassifier
    assert (loaded.predict(X) == model.predict(X)).all()


def test_grid_search_over_a_pipeline_logs_exactly_one_run(mlflow_store: Any, digits: Any) -> None:
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
    loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
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
