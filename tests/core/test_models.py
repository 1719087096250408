"""`autolog.models`: MLflow's map of installed distributions, built from a child's walk."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import importlib_metadata
import pytest

from autolog import models


@pytest.fixture
def mlflow_map() -> Iterator[Any]:
    """MLflow's requirements module with its map unset, restored afterwards."""
    from mlflow.utils import requirements_utils

    saved = requirements_utils._MODULES_TO_PACKAGES
    requirements_utils._MODULES_TO_PACKAGES = None
    try:
        yield requirements_utils
    finally:
        requirements_utils._MODULES_TO_PACKAGES = saved


def _mlflow_own_map(requirements_utils: Any) -> dict[str, list[str]]:
    requirements_utils._MODULES_TO_PACKAGES = None
    requirements_utils._init_modules_to_packages_map()
    return dict(requirements_utils._MODULES_TO_PACKAGES)


def test_the_child_walks_the_same_distributions_as_this_process() -> None:
    assert models._walk_in_child() == importlib_metadata.packages_distributions()


def test_mlflow_builds_the_same_map_from_the_child_walk(mlflow_map: Any) -> None:
    original = importlib_metadata.packages_distributions
    built = dict(models._packages_distributions())
    # The library function lent to MLflow for the build is put back.
    assert importlib_metadata.packages_distributions is original
    assert built["mlflow"]  # MLflow's own additions are there too
    assert built == _mlflow_own_map(mlflow_map)


def test_without_a_child_mlflow_walks_in_this_process(
    mlflow_map: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "")
    assert models._walk_in_child() is None
    built = dict(models._packages_distributions())
    monkeypatch.undo()
    assert built == _mlflow_own_map(mlflow_map)


@pytest.mark.parametrize(
    "answer",
    ["print('not json')", "print('[1, 2]')", "print('{\"x\": 1}')", "raise SystemExit(3)"],
)
def test_a_child_with_a_bad_answer_is_ignored(
    answer: str, mlflow_map: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "_WALK", answer)
    assert models._walk_in_child() is None
    assert dict(models._packages_distributions()) == dict(mlflow_map._MODULES_TO_PACKAGES)
    assert mlflow_map._MODULES_TO_PACKAGES["mlflow"]
