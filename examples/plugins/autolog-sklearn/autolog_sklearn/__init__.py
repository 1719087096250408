"""autolog plugin for scikit-learn: one MLflow run per outermost ``fit``.

Each run gets the estimator's ``get_params(deep=False)`` as params, the training data as
an MLflow dataset input (context ``train``), its score on the training data as the metric
``training_score``, and the fitted estimator as an MLflow ``sklearn`` LoggedModel named
``model`` (with an input example of five training rows; the score is linked to it). A search (``GridSearchCV``, ``RandomizedSearchCV``)
also logs ``best_cv_score`` and its best parameters as ``best_<name>`` params. A Pipeline
or a search logs once: the fits it makes inside are nested calls, which the core runs
untouched. The plugin only declares; the core patches, opens runs and writes.
"""

from __future__ import annotations

# --8<-- [start:imports]
import dataclasses
import pickle
from typing import Any

from autolog import Call, Patch, Plugin, PluginOptions
from autolog.mlflow_backend import steps_aside_for_mlflow

# --8<-- [end:imports]

# --8<-- [start:targets]
# `fit` lives on each estimator class (or a private base class), not on
# BaseEstimator, so the plugin names public classes. The core patches the class in
# the MRO that defines `fit`: RandomForestClassifier and RandomForestRegressor share
# BaseForest.fit, which is wrapped once.
ESTIMATORS = {
    "sklearn.linear_model": "LinearRegression LogisticRegression Ridge Lasso "
    "ElasticNet SGDClassifier SGDRegressor",
    "sklearn.ensemble": "RandomForestClassifier RandomForestRegressor "
    "ExtraTreesClassifier ExtraTreesRegressor GradientBoostingClassifier "
    "GradientBoostingRegressor HistGradientBoostingClassifier "
    "HistGradientBoostingRegressor AdaBoostClassifier",
    "sklearn.svm": "SVC SVR LinearSVC",
    "sklearn.neighbors": "KNeighborsClassifier KNeighborsRegressor",
    "sklearn.tree": "DecisionTreeClassifier DecisionTreeRegressor",
    "sklearn.naive_bayes": "GaussianNB",
    "sklearn.neural_network": "MLPClassifier MLPRegressor",
    "sklearn.cluster": "KMeans",
    "sklearn.decomposition": "PCA",
    "sklearn.pipeline": "Pipeline",
    "sklearn.model_selection": "GridSearchCV RandomizedSearchCV",
}
# --8<-- [end:targets]


# --8<-- [start:options]
@dataclasses.dataclass
class SklearnOptions(PluginOptions):
    """Options under ``autolog(sklearn={...})``; ``log_models`` is inherited."""

    # score() re-predicts the whole training set: turn it off for huge data.
    log_training_score: bool = True


# --8<-- [end:options]


# --8<-- [start:hooks]
def _param(value: Any) -> Any:
    scalar = isinstance(value, (str, int, float, bool, type(None)))
    return value if scalar else str(value)


def log_params(call: Call) -> None:
    """Before ``fit``: so a fit that fails still records what it was asked to do."""
    estimator, cls = call.instance, type(call.instance)
    params = estimator.get_params(deep=False)
    call.sink.log_params({k: _param(v) for k, v in params.items()})
    # The core builds the dataset (digest, schema) off the training thread, and skips
    # data it could only describe by reading it again.
    call.sink.log_dataset(call.get("X"), targets=call.get("y"), context="train")
    call.sink.set_tags(
        {
            "estimator_name": cls.__name__,
            "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
        }
    )


def log_results(call: Call, result: Any) -> None:
    """After a successful ``fit``: training score, search results, the model."""
    estimator, sink = call.instance, call.sink
    X, y = call.get("X"), call.get("y")
    scorable = y is not None and hasattr(estimator, "score")
    if call.options.log_training_score and scorable:
        sink.log_metric("training_score", estimator.score(X, y))
    # GridSearchCV, RandomizedSearchCV
    best = getattr(estimator, "best_params_", None)
    if best is not None:
        sink.log_params({f"best_{k}": _param(v) for k, v in best.items()})
        if hasattr(estimator, "best_score_"):
            sink.log_metric("best_cv_score", estimator.best_score_)
    if call.options.log_models:
        # Snapshot now: the core packages the model off-thread, and the user
        # may refit the same estimator object before that happens.
        snapshot = pickle.dumps(estimator)
        sink.log_model(
            "sklearn",
            loader=lambda: pickle.loads(snapshot),
            artifact_path="model",
            # As mlflow.sklearn.autolog does: skops, MLflow's default, refuses
            # many estimators (all trees) unless their types are allow-listed.
            serialization_format="cloudpickle",
            requirements=("cloudpickle",),
            # A few rows of what fit saw: MLflow infers the signature from them.
            input_example=X[:5],
        )


# --8<-- [end:hooks]


# --8<-- [start:plugin]
class SklearnPlugin(Plugin):
    name = "sklearn"  # = the entry-point name; frameworks=["sklearn"]
    requires = ("scikit-learn>=1.0",)  # checked in metadata, never imported
    options_type = SklearnOptions
    patches = tuple(
        Patch(
            f"{module}:{cls}.fit",
            before=log_params,
            after=log_results,
            owns_run=True,  # the outermost fit opens (or joins the user's) run
            nested="skip",  # fits inside it (Pipeline steps, folds): untouched
            optional=True,  # a class this scikit-learn lacks is not an error
        )
        for module, classes in ESTIMATORS.items()
        for cls in classes.split()
    )

    def is_chief(self) -> bool:
        # Where mlflow.sklearn.autolog() (or mlflow.autolog()) is on, MLflow logs these
        # fits: the plugin leaves them alone, and the core says so once.
        return not steps_aside_for_mlflow(self.name, "scikit-learn", ("sklearn",))


# --8<-- [end:plugin]

__all__ = ["ESTIMATORS", "SklearnOptions", "SklearnPlugin"]
