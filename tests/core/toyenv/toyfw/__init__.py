"""A toy training framework, the stand-in for Keras in the core's tests."""

from toyfw.api import predict  # noqa: F401
from toyfw.models import Model, Trainer, train  # noqa: F401

IMPORT_COUNT = 0
