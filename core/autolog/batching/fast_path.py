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

#: The MLflow versions the fast paths are switched on in. CI tests both ends: the lowest
#: MLflow pyproject.toml allows (noxfile.py's MLFLOW_LOWEST, the mlflow-lowest session) and
#: the newest (MLFLOW, every stack's session), each running the tests that compare the fast
#: paths' rows with the reference writer's; tests/core/batching/test_fast_path.py checks
#: that this range is exactly those two pins' span. The minors in between are not
#: installed by CI. They are covered because what the fast paths rely on is checked where
#: it is used, not assumed: the SQL writer reads the tables' layout from MLflow's own models
#: (MLflow's schema only grows, by migrations) and the session maker's arguments from its
#: signature, and steps aside to the reference writer at anything else; the REST writer
#: looks up the layouts of both ends of ``RestStore`` by name. A new MLflow minor is
#: outside until CI's newest pin moves to it.
TESTED_MLFLOW: Final = SpecifierSet(">=3.7,<3.18")


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
