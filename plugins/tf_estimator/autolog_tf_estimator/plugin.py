"""The ``tf_estimator`` plugin declaration: requirements, patched functions, options.

Nothing here runs TensorFlow: the declaration is read by autolog's core, which wraps the
targets when ``tensorflow_estimator`` is imported. The hooks live in
:mod:`autolog_tf_estimator.handlers`.

Targets:

- ``Estimator.train``, ``.evaluate`` and the export methods are patched once, on
  ``Estimator`` itself; every canned estimator and ``EstimatorV2`` inherit them.
- ``train_and_evaluate`` is a function that the public API modules re-export by name
  (``tf.estimator`` is ``...api._v2.estimator``), so the defining module and each export
  module is a target of its own. Whichever name the user calls, nesting makes it log once.
- ``Estimator._call_model_fn`` (private, but the one place every Estimator hands the
  ``model_fn`` its features, unchanged since TF 1.x) only runs hooks inside the calls above
  (no ``owns_run``): a ``train`` keeps the features it trains on, for the input example.
"""

from __future__ import annotations

from typing import ClassVar

from autolog.plugin import Patch, Plugin
from autolog_tf_estimator import distributed, handlers
from autolog_tf_estimator.options import EstimatorOptions

__all__ = ["EstimatorPlugin"]

_ESTIMATOR = "tensorflow_estimator.python.estimator.estimator:Estimator"
_TRAINING = "tensorflow_estimator.python.estimator.training"

# Modules re-exporting train_and_evaluate; which of them exist varies across releases.
_TRAIN_AND_EVALUATE_EXPORTS = (
    "tensorflow_estimator.python.estimator.api._v2.estimator",
    "tensorflow_estimator.python.estimator.api._v1.estimator",
    "tensorflow_estimator._api.v2.estimator",
    "tensorflow_estimator._api.v1.estimator",
    "tensorflow_estimator.python.estimator.estimator_lib",
)

_TF_VERSIONS = ">=2.6,<2.16"


def _export_patch(method: str, *, optional: bool) -> Patch:
    return Patch(
        f"{_ESTIMATOR}.{method}",
        before=handlers.before_export,
        after=handlers.after_export,
        owns_run=True,
        reuse_instance_run=True,
        nested="join",
        optional=optional,
    )


def _train_and_evaluate_patch(module: str, *, optional: bool) -> Patch:
    return Patch(
        f"{module}:train_and_evaluate",
        before=handlers.before_train_and_evaluate,
        owns_run=True,
        optional=optional,
    )


class EstimatorPlugin(Plugin):
    """Autologging for ``tf.estimator``: canned estimators and custom ``model_fn``."""

    name = "tf_estimator"
    requires: ClassVar = (
        f"tensorflow-estimator{_TF_VERSIONS}",
        tuple(
            f"{dist}{_TF_VERSIONS}" for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-macos")
        ),
    )
    framework = "tensorflow-estimator"
    options_type = EstimatorOptions
    patches: ClassVar = (
        Patch(
            f"{_ESTIMATOR}.train",
            capture=("steps", "max_steps"),
            before=handlers.before_train,
            after=handlers.after_train,
            on_error=handlers.on_train_error,
            owns_run=True,
            nested="join",  # train_and_evaluate calls train: log into its run
        ),
        Patch(
            f"{_ESTIMATOR}.evaluate",
            before=handlers.before_evaluate,
            after=handlers.after_evaluate,
            owns_run=True,
            reuse_instance_run=True,  # evaluate after train: same run
            nested="join",  # evaluations inside train_and_evaluate: its run
        ),
        Patch(
            f"{_ESTIMATOR}._call_model_fn",
            before=handlers.before_model_fn,
            nested="join",
            optional=True,  # private: a release without it only loses the input example
        ),
        _export_patch("export_saved_model", optional=False),
        _export_patch("experimental_export_all_saved_models", optional=True),
        _export_patch("export_savedmodel", optional=True),  # deprecated TF1 spelling
        _train_and_evaluate_patch(_TRAINING, optional=False),
        *(_train_and_evaluate_patch(m, optional=True) for m in _TRAIN_AND_EVALUATE_EXPORTS),
    )

    def is_chief(self) -> bool:
        return distributed.is_chief()
