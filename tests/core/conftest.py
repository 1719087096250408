"""The toy framework and its plugins, registered through a real entry point.

``toyenv/`` holds ``*.dist-info`` folders, so putting it on ``sys.path`` makes
importlib-metadata see the toy distributions exactly as it sees installed ones.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import autolog
from autolog import safety, session
from autolog.registry import registry
from autolog.testing import MemoryStore, capture

TOYENV = str(Path(__file__).parent / "toyenv")


def forget_toyfw() -> None:
    for name in [m for m in sys.modules if m == "toyfw" or m.startswith("toyfw.")]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def toyenv(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(TOYENV)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TOYENV, os.environ.get("PYTHONPATH", "")]))
    forget_toyfw()
    safety.reset_reported()
    yield
    autolog.disable()
    registry.disable_all()
    forget_toyfw()
    session.instance_runs.clear()
    safety.set_silent(False)


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    with capture() as memory:
        yield memory
