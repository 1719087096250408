"""`autolog.guard`: plugin code the framework calls by itself never breaks training."""

from __future__ import annotations

import pytest

import autolog
from autolog import safety


def test_a_failure_is_reported_once_per_site_and_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    safety.reset_reported()
    calls = []

    def on_epoch_end(epoch: int) -> str:
        with autolog.guard("myplugin", "callback on_epoch_end"):
            calls.append(epoch)
            raise RuntimeError(f"bad logs at epoch {epoch}")
        return "training goes on"

    with pytest.warns(autolog.AutologWarning) as caught:
        results = [on_epoch_end(epoch) for epoch in range(3)]
    assert results == ["training goes on"] * 3 and calls == [0, 1, 2]
    assert len(caught) == 1  # once per site
    message = str(caught[0].message)
    assert "'myplugin'" in message and "callback on_epoch_end" in message
    assert "bad logs at epoch 0" in message


def test_under_autolog_testing_the_failure_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOG_TESTING", "1")
    with pytest.raises(RuntimeError, match="surfaced"), autolog.guard("myplugin", "hook"):
        raise RuntimeError("surfaced")


def test_interrupts_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    with pytest.raises(KeyboardInterrupt), autolog.guard("myplugin", "hook"):
        raise KeyboardInterrupt
