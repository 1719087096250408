"""Helpers for tests that use the toy framework in tests/core/toyenv."""

from __future__ import annotations

import sys
from pathlib import Path

TOYENV = str(Path(__file__).resolve().parent.parent / "core" / "toyenv")


def forget_toyfw() -> None:
    """Remove toyfw from sys.modules so that the next import runs its body again."""
    for name in [m for m in sys.modules if m == "toyfw" or m.startswith("toyfw.")]:
        del sys.modules[name]
