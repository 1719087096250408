"""The scikit-learn plugin as a third-party distribution: discovery, conformance, what it logs.

Everything here runs against autolog's in-memory store (``autolog.testing.capture``);
``test_sklearn_mlflow.py`` checks the same runs in a real MLflow store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from typing import Any

import pytest

pytest.importorskip("sklearn")

import autolog
import autolog.testing
from autolog.registry import registry

QUIET = "import warnings; warnings.simplefilter('ignore')"
IMPORT_CODE = f"{QUIET}\nfrom sklearn.linear_model import LogisticRegression"
EXERCISE_CODE = "LogisticRegression(max_iter=50).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])"


def _fit_small() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=50).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


# Discovery ----------------------------------------------------------------------------


def test_found_through_its_own_entry_point() -> None:
    from autolog_sklearn import SklearnPlugin

    info = autolog.available_plugins()["sklearn"]
    assert info.plugin_class is SklearnPlugin
    assert info.distribution == "autolog-sklearn"
    assert info.entry_point == "autolog_sklearn:SklearnPlugin"
    assert info.framework == "scikit-learn"
    assert info.available, info.state


def test_enabling_the_plugin_does_not_import_sklearn() -> None:
    code = (
        "import sys, threading, time\n"
        "import autolog, autolog_sklearn\n"
        "autolog.autolog(frameworks=['sklearn'])\n"
        "for thread in threading.enumerate():\n"
        "    if thread.name == 'autolog-warm-up':\n"
        "        thread.join(120)\n"
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "False"


def test_cli_lists_it_with_its_distribution() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "autolog", "plugins", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    import json

    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert rows["sklearn"]["distribution"] == "autolog-sklearn"
    assert rows["sklearn"]["state"] == "would be enabled"


def test_options_are_validated_by_the_core() -> None:
    with pytest.raises(TypeError, match="log_training_score"):
        autolog.autolog(frameworks=["sklearn"], sklearn={"log_score": False})
    # 0 is a value a plugin may define; this one does not, and says so when configured.
    with pytest.raises(TypeError, match="log_every_n_steps must be a positive int or None"):
        autolog.autolog(frameworks=["sklearn"], sklearn={"log_every_n_steps": 0})


# Conformance kit --------------------------------------------------------------------


def test_passes_the_conformance_checks() -> None:
    report = autolog.testing.check_plugin(
        "sklearn",
        exercise=_fit_small,
        import_code=IMPORT_CODE,
        exercise_code=EXERCISE_CODE,
    )
    report.assert_ok()
    names = [r.name for r in report.results]
    assert "failing hooks never break the user's call" in names
    assert sum(n.startswith("ordering:") for n in names) == 6


# What it logs ---------------------------------------------------------------------------


def test_fit_logs_params_score_tags_and_model(memory: Any, digits: Any) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = digits
    autolog.autolog(frameworks=["sklearn"])
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y)

    (run,) = memory.runs.values()
    assert run.status == "FINISHED"
    assert run.params["max_depth"] == "5"
    assert run.params["random_state"] == "0"
    assert run.params["class_weight"] == "None"
    assert set(run.params) == set(model.get_params(deep=False))
    assert run.metric_history("training_score") == [(0, pytest.approx(model.score(X, y)))]
    assert run.tags["estimator_name"] == "DecisionTreeClassifier"
    assert run.tags["estimator_class"].endswith(".DecisionTreeClassifier")
    assert run.tags["autolog.plugin"] == "sklearn"
    (logged,) = run.models
    assert logged["flavor"] == "sklearn"
    assert logged["artifact_path"] == "model"
    snapshot = logged["model"]
    assert snapshot is not model
    assert (snapshot.predict(X) == model.predict(X)).all()


def test_per_iteration_values_are_metrics_at_their_iteration(memory: Any, digits: Any) -> None:
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neural_network import MLPClassifier

    X, y = digits
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few iterations on purpose
        mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0).fit(X, y)
    assert memory.last_run().metric_history("loss") == [
        (step, pytest.approx(loss)) for step, loss in enumerate(mlp.loss_curve_)
    ]
    hist = HistGradientBoostingRegressor(
        max_iter=5, early_stopping=True, validation_fraction=0.2, random_state=0
    ).fit(X, y)
    run = memory.last_run()
    for metric, values in (
        ("train_score", hist.train_score_),
        ("validation_score", hist.validation_score_),
    ):
        assert run.metric_history(metric) == [
            (step, pytest.approx(value)) for step, value in enumerate(values)
        ]
    assert len(run.metric_history("train_score")) == hist.n_iter_ + 1  # and before the first

    # log_every_n_steps thins them out, as it does for every plugin with steps; the last
    # value is kept, so the metric's latest value is the final one.
    autolog.autolog(frameworks=["sklearn"], log_models=False, log_every_n_steps=2)
    boosted = GradientBoostingClassifier(n_estimators=6, max_depth=1, random_state=0).fit(X, y)
    assert memory.last_run().metric_history("train_score") == [
        (step, pytest.approx(boosted.train_score_[step])) for step in (0, 2, 4, 5)
    ]


def test_feature_importances_are_a_json_artifact_named_by_column(memory: Any, digits: Any) -> None:
    import pandas as pd
    from sklearn.tree import DecisionTreeRegressor

    X, y = digits
    frame = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"])
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    tree = DecisionTreeRegressor(max_depth=3, random_state=0).fit(frame, y)
    with open(memory.last_run().artifacts["feature_importance.json"], encoding="utf-8") as f:
        importances = json.load(f)
    assert list(importances) == ["a", "b", "c", "d"]
    assert list(importances.values()) == pytest.approx(list(tree.feature_importances_))


def test_positional_and_keyword_calls_log_the_same(memory: Any, digits: Any) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = digits
    autolog.autolog(frameworks=["sklearn"])
    KNeighborsClassifier(n_neighbors=3).fit(X[:200], y[:200])
    KNeighborsClassifier(n_neighbors=3).fit(X=X[:200], y=y[:200])
    first, second = memory.runs.values()
    assert first.params == second.params
    assert first.metrics == second.metrics


def test_non_scalar_params_are_rendered_as_text(memory: Any, digits: Any) -> None:
    from sklearn.neural_network import MLPClassifier

    X, y = digits
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: two iterations on purpose
        MLPClassifier(hidden_layer_sizes=(8, 4), max_iter=2, random_state=0).fit(X, y)
    run = memory.last_run()
    assert run.params["hidden_layer_sizes"] == "(8, 4)"


def test_no_training_score_without_labels(memory: Any, digits: Any) -> None:
    from sklearn.cluster import KMeans

    X, _ = digits
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    run = memory.last_run()
    assert run.params["n_clusters"] == "3"
    assert run.metrics == {}
    assert run.models == []


def test_options_turn_off_score_and_model(memory: Any, digits: Any) -> None:
    from sklearn.linear_model import Ridge

    X, y = digits
    autolog.autolog(frameworks=["sklearn"], sklearn={"log_training_score": False})
    Ridge().fit(X, y)
    autolog.autolog(frameworks=["sklearn"], sklearn={"log_models": False})
    Ridge().fit(X, y)
    first, second = memory.runs.values()
    assert first.metrics == {} and len(first.models) == 1
    assert "training_score" in second.metrics and second.models == []


def test_pipeline_logs_one_run_and_its_steps_are_silent(memory: Any, digits: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = digits
    autolog.autolog(frameworks=["sklearn"])
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)

    (run,) = memory.runs.values()
    assert run.tags["estimator_name"] == "Pipeline"
    assert "LogisticRegression(max_iter=300)" in run.params["steps"]
    assert "C" not in run.params  # the inner estimator's params are not mixed in
    assert run.last_metric("training_score") == pytest.approx(pipe.score(X, y))
    assert len(run.models) == 1


def test_grid_search_logs_one_run_with_the_best_result(memory: Any, digits: Any) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X, y = digits
    autolog.autolog(frameworks=["sklearn"])
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0), {"max_depth": [2, 4, 8]}, cv=3
    ).fit(X, y)

    (run,) = memory.runs.values()  # 9 fold fits + 1 refit, all silent
    assert run.tags["estimator_name"] == "GridSearchCV"
    assert run.params["best_max_depth"] == str(search.best_params_["max_depth"])
    assert run.last_metric("best_cv_score") == pytest.approx(search.best_score_)
    assert run.last_metric("training_score") == pytest.approx(search.score(X, y))
    assert run.params["param_grid.max_depth"] == "[2, 4, 8]"  # nested dicts are flattened
    with open(run.artifacts["cv_results.json"], encoding="utf-8") as handle:
        cv_results = json.load(handle)
    assert cv_results["params"] == [{"max_depth": d} for d in (2, 4, 8)]
    assert cv_results["mean_test_score"] == pytest.approx(
        list(search.cv_results_["mean_test_score"])
    )
    assert cv_results["rank_test_score"] == list(search.cv_results_["rank_test_score"])


def test_each_outermost_fit_is_its_own_run(memory: Any, digits: Any) -> None:
    from sklearn.naive_bayes import GaussianNB

    X, y = digits
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    model = GaussianNB()
    model.fit(X, y)
    model.fit(X[:500], y[:500])
    assert len(memory.runs) == 2


def test_a_failing_fit_fails_the_run_and_raises_the_users_error(memory: Any) -> None:
    from sklearn.linear_model import LinearRegression

    autolog.autolog(frameworks=["sklearn"])
    with pytest.raises(ValueError) as caught:
        LinearRegression().fit([[1.0], [2.0]], [1.0, 2.0, 3.0])  # inconsistent lengths
    assert "inconsistent" in str(caught.value).lower()
    run = memory.last_run()
    assert run.status == "FAILED"
    assert run.params["fit_intercept"] == "True"  # logged before the fit ran
    assert run.metrics == {} and run.models == []


def test_logs_into_the_users_run(memory: Any, digits: Any) -> None:
    from sklearn.linear_model import LinearRegression

    X, y = digits
    user_run = memory.start_user_run()
    autolog.autolog(frameworks=["sklearn"], log_models=False)
    LinearRegression().fit(X, y)
    assert list(memory.runs) == [user_run]
    assert memory.runs[user_run].status == "RUNNING"
    assert "training_score" in memory.runs[user_run].metrics


def test_disable_restores_fit_and_stops_logging(memory: Any, digits: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    base = next(k for k in RandomForestClassifier.__mro__ if "fit" in vars(k))  # BaseForest
    assert base is next(k for k in RandomForestRegressor.__mro__ if "fit" in vars(k))
    original = vars(base)["fit"]
    autolog.autolog(frameworks=["sklearn"])
    assert vars(base)["fit"] is not original
    assert "fit" not in vars(RandomForestClassifier)  # patched where defined, wrapped once
    assert len(list(registry.iter_wrappers(vars(base)["fit"]))) == 1  # not one per subclass
    assert vars(base)["fit"].__wrapped__ is original
    autolog.disable(["sklearn"])
    assert vars(base)["fit"] is original
    X, y = digits
    RandomForestClassifier(n_estimators=2).fit(X, y)
    assert memory.runs == {}
