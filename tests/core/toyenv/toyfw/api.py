"""The public API module re-exports the function object, as tf.estimator does."""

from toyfw.models import train  # noqa: F401
