"""A toy training framework, the stand-in for Keras in the core's tests."""

from toyfw.models import Model, Trainer, train  # noqa: F401

IMPORT_COUNT = 0
