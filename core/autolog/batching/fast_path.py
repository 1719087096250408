"""Whether the store writers may take their fast paths, which rely on MLflow's internals.

The SQL writer (`autolog.batching.stores.sql`) writes MLflow's tables directly, and the
REST writer (`autolog.batching.stores.rest`) sends single-attempt requests with
``log_batch`` bodies it builds itself: both are tested to write the same rows as MLflow's
public client, but only against the MLflow versions CI installs. Outside that range, or
with ``AUTOLOG_FAST_PATH=0``, every write goes through ``MlflowClient`` (the reference
writer, `autolog.batching.stores.client`): slower, never wrong. The installed version is
read from distribution metadata, so asking never imports MLflow. The writer of a store is
chosen once (`autolog.batching.stores.writer_for`), so the switch applies to stores first
written after it is set.
"""

from __future__ import annotations

import functools
from typing import Final

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from autolog import env

__all__ = ["TESTED_MLFLOW", "enabled", "mlflow_version"]

#: The MLflow versions the fast paths are tested against (noxfile.py's MLFLOW pin must fall
#: inside; tests/core/batching/test_fast_path.py checks it).
TESTED_MLFLOW: Final = SpecifierSet(">=3.17,<3.18")


@functools.cache
def mlflow_version() -> Version | None:
    """The installed MLflow's version (``mlflow`` or ``mlflow-skinny``), from metadata."""
    import importlib_metadata

    for name in ("mlflow", "mlflow-skinny"):
        try:
            return Version(importlib_metadata.version(name))
        except (importlib_metadata.PackageNotFoundError, InvalidVersion):
            continue
    return None


def enabled() -> bool:
    """Whether fast paths may be used now (read at every call: the switch is an env var)."""
    if not env.fast_path_enabled():
        return False
    version = mlflow_version()
    return version is not None and version in TESTED_MLFLOW
