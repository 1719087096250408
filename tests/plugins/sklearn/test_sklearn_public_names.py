"""The example plugin and its tests use only autolog's public names, as a third party must.

A private name (``_stepped_aside``, ``_locate``) or the core's discovery module can change
under a plugin without notice; what a plugin's tests need is public
(`autolog.testing.plugin_info`, `autolog.registry.is_patched`, `Registry.iter_wrappers`).
The sources are read with `ast`, not imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SOURCES = sorted(
    [
        *(ROOT / "examples" / "plugins" / "autolog-sklearn" / "autolog_sklearn").glob("*.py"),
        *Path(__file__).parent.glob("*.py"),
    ]
)
_INTERNAL = ("autolog.discovery",)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path) -> list[str]:
    """Each use of a private or internal autolog name in ``path``, as ``file:line: what``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    modules: set[str] = {"autolog"}  # local names bound to autolog modules or objects

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{path.name}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "autolog":
                    modules.add((alias.asname or alias.name).split(".")[0])
                    if any(_private(p) for p in alias.name.split(".")) or alias.name in _INTERNAL:
                        report(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "autolog":
                continue
            for alias in node.names:
                modules.add(alias.asname or alias.name)
                full = f"{node.module}.{alias.name}"
                parts = full.split(".")
                if any(_private(p) for p in parts) or any(
                    full == m or full.startswith(m + ".") for m in _INTERNAL
                ):
                    report(node, f"imports {full}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in modules:
                report(node, f"uses {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            target, name = node.args[0], node.args[1]
            if (
                isinstance(target, ast.Name)
                and target.id in modules
                and isinstance(name, ast.Constant)
                and isinstance(name.value, str)
                and _private(name.value)
            ):
                report(node, f"reaches {target.id}.{name.value}")
    return found


def test_the_sources_are_found() -> None:
    names = {p.name for p in SOURCES}
    assert {"__init__.py", "test_sklearn_plugin.py", "conftest.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_only_public_autolog_names(path: Path) -> None:
    assert private_uses(path) == []


def test_the_check_sees_private_uses(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from autolog import mlflow_backend\n"
        "from autolog.discovery import discover\n"
        "from autolog.registry import _locate\n"
        "import autolog._version\n"
        "def test(monkeypatch):\n"
        "    monkeypatch.setattr(mlflow_backend, '_stepped_aside', set())\n"
        "    autolog.registry._raw_attribute\n"
    )
    assert private_uses(bad) == [
        "bad.py:2: imports autolog.discovery.discover",
        "bad.py:3: imports autolog.registry._locate",
        "bad.py:4: imports autolog._version",
        "bad.py:6: reaches mlflow_backend._stepped_aside",
        "bad.py:7: uses autolog.registry._raw_attribute",
    ]
