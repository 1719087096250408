"""Helpers shared by the batching tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient


class CountingClient:
    """The real client, counting the ``log_batch`` requests that go through it."""

    def __init__(self, real: MlflowClient, fail_after: int | None = None) -> None:
        self.real = real
        self.requests: list[tuple[int, int, int]] = []
        self.fail_after = fail_after

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = (), tags: Any = ()) -> None:
        if self.fail_after is not None and len(self.requests) >= self.fail_after:
            raise ConnectionError("simulated network failure")
        self.requests.append((len(metrics), len(params), len(tags)))
        self.real.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def spool_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.jsonl")) if path.is_dir() else []
