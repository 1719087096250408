"""autolog plugin for scikit-learn: one MLflow run per outermost ``fit``, with the
estimator's params, the training data, the per-iteration values scikit-learn keeps, the
training score, a search's results, feature importances and the fitted model (what each
is: README.md). The plugin only declares; the core patches, opens runs and writes.
"""

from __future__ import annotations

# --8<-- [start:imports]
import dataclasses
from typing import Any

import autolog
from autolog import Call, Patch, Plugin, PluginOptions
from autolog.mlflow_backend import steps_aside_for_mlflow
from autolog.options import check_log_every_n_steps

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
    """Options under ``autolog(sklearn={...})``; ``log_models`` and ``log_every_n_steps``
    (for the per-iteration metrics) are inherited."""

    # score() re-predicts the whole training set: turn it off for huge data.
    log_training_score: bool = True

    def __post_init__(self) -> None:
        check_log_every_n_steps(self.log_every_n_steps)  # None or >= 1: 0 means nothing here


# --8<-- [end:options]


# --8<-- [start:hooks]
# Per-iteration values a fitted estimator keeps: attribute -> metric, step = iteration.
CURVES = {
    "loss_curve_": "loss",  # MLP*: the training loss per epoch
    "validation_scores_": "validation_score",  # MLP* with early_stopping
    "train_score_": "train_score",  # (Hist)GradientBoosting*: per boosting stage
    "validation_score_": "validation_score",  # HistGradientBoosting* with early stopping
}


def log_params(call: Call) -> None:
    """Before ``fit``: so a fit that fails still records what it was asked to do."""
    cls = type(call.instance)
    call.sink.log_params(autolog.flatten_params(call.instance.get_params(deep=False)))
    # The core builds the dataset (digest, schema) off the training thread.
    call.sink.log_dataset(call.get("X"), targets=call.get("y"), context="train")
    path = f"{cls.__module__}.{cls.__qualname__}"
    call.sink.set_tags({"estimator_name": cls.__name__, "estimator_class": path})


def log_results(call: Call, result: Any) -> None:
    """After a successful ``fit``: curves, scores, search results, the model, importances."""
    estimator, sink, options = call.instance, call.sink, call.options
    X, y = call.get("X"), call.get("y")
    curves = {m: getattr(estimator, a) for a, m in CURVES.items() if hasattr(estimator, a)}
    autolog.log_history(sink, curves, options.log_every_n_steps)  # every n-th and the last
    if options.log_training_score and y is not None and hasattr(estimator, "score"):
        sink.log_metric("training_score", estimator.score(X, y))
    if hasattr(estimator, "best_params_"):  # GridSearchCV, RandomizedSearchCV
        sink.log_params(autolog.flatten_params(estimator.best_params_, prefix="best", sep="_"))
        autolog.log_dict(sink, estimator.cv_results_, "cv_results.json")
    if hasattr(estimator, "best_score_"):  # not with a callable refit
        sink.log_metric("best_cv_score", estimator.best_score_)
    if options.log_models:
        sink.log_model(
            "sklearn",
            # Pickled now: the core packages the model off-thread, and the user may refit
            # the same estimator object before that happens.
            loader=autolog.snapshot(estimator),
            # As mlflow.sklearn.autolog does: skops, MLflow's default, refuses many
            # estimators (all trees) unless their types are allow-listed.
            serialization_format="cloudpickle",
            requirements=("cloudpickle",),
            input_example=X[:5],  # MLflow infers the signature from a few rows
        )
    importances = getattr(estimator, "feature_importances_", None)  # trees, boosting
    if importances is not None:
        names = getattr(estimator, "feature_names_in_", range(len(importances)))
        named = {str(k): v for k, v in zip(names, importances, strict=True)}
        autolog.log_dict(sink, named, "feature_importance.json")


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
