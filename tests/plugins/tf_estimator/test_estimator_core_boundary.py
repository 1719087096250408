"""The Estimator plugin holds no threads, locks or exit hooks, and uses only the core's
public names (the rule and its check: tests/plugins/keras/test_keras_core_boundary.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.keras.test_keras_core_boundary import ROOT, core_boundary_violations

PLUGIN_SOURCES = sorted((ROOT / "plugins" / "tf_estimator").rglob("*.py"))


def test_the_plugin_sources_are_found() -> None:
    assert {"plugin.py", "artifacts.py", "hooks.py"} <= {p.name for p in PLUGIN_SOURCES}


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: p.name)
def test_no_thread_lock_exit_hook_or_private_core_import(path: Path) -> None:
    assert core_boundary_violations(path) == []
