"""The Keras plugin holds no threads, locks or exit hooks, and uses only the core's public names.

Threads, locks and exit hooks are the core's business (its worker, its exit flush): a
plugin that keeps its own relies on an ordering with them that nobody states. Temporary
files are handed over through the sink instead (`RunSink.log_temp_artifacts`), and the
model warm-up is `autolog.warm_up_models`. The source is read, not imported: no
TensorFlow is needed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGIN_SOURCES = sorted((ROOT / "plugins" / "keras").rglob("*.py"))

# Core modules a plugin must not import: they are the core's internals (models packages
# on the worker; discovery, registry internals and the batching layer run the plugins).
_INTERNAL_MODULES = ("autolog.models", "autolog.discovery", "autolog.batching", "autolog.warmup")
_FORBIDDEN_TEXT = {
    "threading": re.compile(r"\bthreading\b"),
    "atexit": re.compile(r"\batexit\b"),
    "Lock(": re.compile(r"\b\w*Lock\("),
}


def core_boundary_violations(path: Path) -> list[str]:
    """What in ``path`` breaks the rule, one line each (empty when nothing does)."""
    text = path.read_text(encoding="utf-8")
    found = [
        f"{path.name}:{number}: {name}"
        for number, line in enumerate(text.splitlines(), 1)
        for name, pattern in _FORBIDDEN_TEXT.items()
        if pattern.search(line)
    ]
    for node in ast.walk(ast.parse(text)):
        modules: list[tuple[str, list[str]]] = []
        if isinstance(node, ast.Import):
            modules = [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [(node.module, [alias.name for alias in node.names])]
        for module, names in modules:
            if module != "autolog" and not module.startswith("autolog."):
                continue
            private = [p for p in module.split(".") if p.startswith("_")]
            private += [n for n in names if n.startswith("_")]
            internal = [m for m in _INTERNAL_MODULES if module == m or module.startswith(m + ".")]
            internal += [f"autolog.{n}" for n in names if f"autolog.{n}" in _INTERNAL_MODULES]
            if private or internal:
                found.append(f"{path.name}:{node.lineno}: imports {module} {names or ''}".strip())
    return found


def test_the_plugin_sources_are_found() -> None:
    names = {p.name for p in PLUGIN_SOURCES}
    assert {"plugin.py", "callback.py", "snapshots.py"} <= names


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: p.name)
def test_no_thread_lock_exit_hook_or_private_core_import(path: Path) -> None:
    assert core_boundary_violations(path) == []


def test_the_check_sees_each_kind_of_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import atexit\n"
        "import threading\n"
        "_lock = threading.RLock()\n"
        "from autolog.models import warm_up\n"
        "from autolog.plugin import _TARGET\n"
        "import autolog._version\n"
        "from autolog import models\n"
    )
    found = "\n".join(core_boundary_violations(bad))
    for expected in (
        "bad.py:1: atexit",
        "bad.py:2: threading",
        "bad.py:3: Lock(",
        "bad.py:4: imports autolog.models",
        "bad.py:5: imports autolog.plugin ['_TARGET']",
        "bad.py:6: imports autolog._version",
        "bad.py:7: imports autolog ['models']",
    ):
        assert expected in found
    good = tmp_path / "good.py"
    good.write_text("from autolog import Call, lazy_subclass, warm_up_models\n")
    assert core_boundary_violations(good) == []
