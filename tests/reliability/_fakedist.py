"""Fake installed distributions: ``*.dist-info`` folders (and their modules) in a temp dir.

Put the dir on ``sys.path`` and importlib-metadata sees them exactly as installed packages,
so a test can install a third-party plugin (or a broken one) without pip.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

__all__ = ["FRAMEWORK_SOURCE", "forget", "install"]

# A tiny training framework the fake plugins patch.
FRAMEWORK_SOURCE = '''
class Model:
    def fit(self, x, epochs=1, callbacks=None, password=None, db_uri=None, note=None):
        """Train."""
        history = []
        for epoch in range(epochs):
            logs = {"loss": 1.0 / (epoch + 1)}
            for callback in callbacks or ():
                callback(epoch, logs)
            history.append(logs["loss"])
        return history
'''


def install(
    root: Path,
    name: str,
    version: str = "1.0",
    *,
    entry_points: Mapping[str, str] | None = None,
    modules: Mapping[str, str] | None = None,
    metadata: str | bytes | None = None,
    entry_points_text: str | None = None,
) -> Path:
    """Create ``<root>/<name>-<version>.dist-info`` and the given module files.

    ``metadata`` replaces the generated METADATA (str or raw bytes, to make it malformed);
    ``entry_points_text`` replaces the generated entry_points.txt.
    """
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    if metadata is None:
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if isinstance(metadata, bytes):
        (dist_info / "METADATA").write_bytes(metadata)
    else:
        (dist_info / "METADATA").write_text(metadata)
    if entry_points_text is None and entry_points:
        lines = ["[autolog.plugins]", *(f"{k} = {v}" for k, v in entry_points.items())]
        entry_points_text = "\n".join(lines) + "\n"
    if entry_points_text is not None:
        (dist_info / "entry_points.txt").write_text(entry_points_text)
    for relative, source in (modules or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return dist_info


def forget(*prefixes: str) -> None:
    """Drop modules from ``sys.modules`` so the next import runs them again."""
    for module in [m for m in sys.modules if m.split(".")[0] in prefixes]:
        del sys.modules[module]
