"""autolog plugin for TensorFlow Estimator (``tf.estimator``, TensorFlow <= 2.15).

Enable it with ``autolog.autolog()`` (or ``autolog.autolog(frameworks=["tf_estimator"])``);
``Estimator.train``, ``evaluate``, ``export_saved_model`` and ``tf.estimator.train_and_evaluate``
are then logged to MLflow with no change to the training code. Importing this package never
imports TensorFlow: autolog discovers plugins even where the framework is absent.
"""

from autolog_tf_estimator.options import EstimatorOptions
from autolog_tf_estimator.plugin import EstimatorPlugin

__all__ = ["EstimatorOptions", "EstimatorPlugin"]
