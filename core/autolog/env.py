"""Every environment variable autolog reads, in one place.

=================================  ==========================================================
``AUTOLOG_DISABLED_PLUGINS``        Comma-separated plugin names never enabled, or ``*`` for
                                    all of them.
``AUTOLOG_FRAMEWORKS``              Comma-separated plugin names ``autolog run`` enables
                                    (empty: every available plugin).
``AUTOLOG_TESTING``                 ``1``: errors inside autolog raise instead of warning.
``AUTOLOG_DEBUG``                   ``1``: autolog's warnings keep their exception details
                                    and say where they were raised.
``AUTOLOG_SPOOL_DIR``               Where undeliverable data waits for ``autolog sync``
                                    (default: the user cache dir, ``.../autolog/spool``).
``AUTOLOG_DISABLE_PLUGIN_AUTOLOAD`` ``1``: load only plugins named in ``frameworks=`` or
                                    shipped with autolog itself.
``AUTOLOG_OPTIONS``                 JSON object of `autolog.autolog` keyword arguments,
                                    used by ``autolog run``.
``AUTOLOG_AGENT``                   ``0``: start no delivery agent; what a process that dies
                                    leaves in its run logs waits for ``autolog sync``.
``AUTOLOG_AGENT_PATIENCE``          Seconds the delivery agent keeps retrying a store that is
                                    down (default 3600).
``AUTOLOG_FAST_PATH``               ``0``: store writers use MLflow's public client only.
=================================  ==========================================================

MLflow's own ``MLFLOW_TRACKING_URI``, ``MLFLOW_RUN_ID``, ``MLFLOW_EXPERIMENT_NAME`` and
``MLFLOW_EXPERIMENT_ID`` are honoured through MLflow itself.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTOLOG_DISABLED_PLUGINS = "AUTOLOG_DISABLED_PLUGINS"
AUTOLOG_FRAMEWORKS = "AUTOLOG_FRAMEWORKS"
AUTOLOG_TESTING = "AUTOLOG_TESTING"
AUTOLOG_DEBUG = "AUTOLOG_DEBUG"
AUTOLOG_SPOOL_DIR = "AUTOLOG_SPOOL_DIR"
AUTOLOG_DISABLE_PLUGIN_AUTOLOAD = "AUTOLOG_DISABLE_PLUGIN_AUTOLOAD"
AUTOLOG_OPTIONS = "AUTOLOG_OPTIONS"
AUTOLOG_AGENT = "AUTOLOG_AGENT"
AUTOLOG_AGENT_PATIENCE = "AUTOLOG_AGENT_PATIENCE"
AUTOLOG_FAST_PATH = "AUTOLOG_FAST_PATH"

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _names(name: str) -> frozenset[str]:
    raw = os.environ.get(name, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def testing() -> bool:
    """Whether autolog's own errors should raise (``AUTOLOG_TESTING=1``)."""
    return _flag(AUTOLOG_TESTING)


def debug() -> bool:
    """Whether autolog's warnings are shown with every detail (``AUTOLOG_DEBUG=1``)."""
    return _flag(AUTOLOG_DEBUG)


def disabled_plugins() -> frozenset[str]:
    """Names in ``AUTOLOG_DISABLED_PLUGINS``; ``{"*"}`` disables every plugin."""
    return _names(AUTOLOG_DISABLED_PLUGINS)


def requested_frameworks() -> list[str] | None:
    """Names in ``AUTOLOG_FRAMEWORKS``, or ``None`` when unset or empty (meaning all)."""
    names = _names(AUTOLOG_FRAMEWORKS)
    return sorted(names) if names else None


def agent_enabled() -> bool:
    """Whether a delivery agent may be started (``AUTOLOG_AGENT`` is not ``0``)."""
    return os.environ.get(AUTOLOG_AGENT, "").strip().lower() not in {"0", "false", "no", "off"}


def fast_path_enabled() -> bool:
    """Whether store writers may use their fast paths (``AUTOLOG_FAST_PATH`` is not ``0``)."""
    return os.environ.get(AUTOLOG_FAST_PATH, "").strip().lower() not in {"0", "false", "no", "off"}


def plugin_autoload_disabled() -> bool:
    return _flag(AUTOLOG_DISABLE_PLUGIN_AUTOLOAD)


def spool_dir() -> Path:
    """The spool directory (not created here)."""
    explicit = os.environ.get(AUTOLOG_SPOOL_DIR)
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("autolog")) / "spool"
