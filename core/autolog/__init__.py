"""autolog: plugin-based, framework-agnostic autologging for MLflow.

One call, `autolog`, and every training run of a supported framework is tracked in
MLflow with no change to the training code. Framework support lives in plugins found
through the ``autolog.plugins`` entry-point group; every write goes through the batching
layer, `BatchLogger`. ``autolog.__version__`` is the version of autolog-core (what
``autolog --version`` prints).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autolog._version import __version__
from autolog.api import autolog, available_plugins, disable
from autolog.models import warm_up_models
from autolog.plugin import (
    Call,
    Patch,
    Plugin,
    PluginDeclarationError,
    PluginOptions,
    RunSink,
    guard,
)
from autolog.safety import AutologWarning
from autolog.sdk import (
    add_callback,
    flatten_params,
    lazy_subclass,
    log_dict,
    log_history,
    snapshot,
)

if TYPE_CHECKING:
    from autolog.batching import BatchLogger

__all__ = [
    "AutologWarning",
    "BatchLogger",
    "Call",
    "Patch",
    "Plugin",
    "PluginDeclarationError",
    "PluginOptions",
    "RunSink",
    "__version__",
    "add_callback",
    "autolog",
    "available_plugins",
    "disable",
    "flatten_params",
    "guard",
    "lazy_subclass",
    "log_dict",
    "log_history",
    "snapshot",
    "warm_up_models",
]


def __getattr__(name: str) -> Any:
    # The batching layer pulls in MLflow; import it only when someone asks for it.
    if name == "BatchLogger":
        from autolog.batching import BatchLogger

        return BatchLogger
    if name == "testing":
        import importlib

        return importlib.import_module("autolog.testing")
    raise AttributeError(f"module 'autolog' has no attribute {name!r}")
