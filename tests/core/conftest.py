"""The toy framework and its plugins, registered through a real entry point.

``toyenv/`` holds ``*.dist-info`` folders, so putting it on ``sys.path`` makes
importlib-metadata see the toy distributions exactly as it sees installed ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from autolog.registry import registry
from autolog.testing import MemoryStore, capture
from tests.support.toy import TOYENV, forget_toyfw


@pytest.fixture(autouse=True)
def toyenv(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(TOYENV)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TOYENV, os.environ.get("PYTHONPATH", "")]))
    forget_toyfw()
    yield
    registry.disable_all()
    forget_toyfw()


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    with capture() as memory:
        yield memory
