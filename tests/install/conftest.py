"""The install tests build virtualenvs and install TensorFlow in them: minutes each."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "install: builds a fresh virtualenv and installs the README's commands (slow)"
    )
