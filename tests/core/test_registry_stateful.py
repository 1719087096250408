"""Random sequences of enable / disable / import / forget / call keep the registry exact."""

from __future__ import annotations

import importlib
import sys

from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import autolog
from autolog.registry import registry
from autolog.testing import capture
from tests.support.toy import TOYENV, forget_toyfw


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        if TOYENV not in sys.path:
            sys.path.insert(0, TOYENV)
        forget_toyfw()
        registry.disable_all()
        self._capture = capture()
        self.store = self._capture.__enter__()
        self.enabled = False
        self.module = None  # the toyfw.models module object currently imported
        self.original_fit = None
        self.expected_runs = 0

    @rule()
    def enable(self) -> None:
        autolog.autolog(frameworks=["toy"])
        self.enabled = True

    @rule()
    def disable(self) -> None:
        autolog.disable(["toy"])
        self.enabled = False

    @rule()
    def import_framework(self) -> None:
        module = importlib.import_module("toyfw.models")
        if module is not self.module:
            self.module = module
            raw = module.Trainer.__dict__["fit"]
            self.original_fit = getattr(raw, "__wrapped__", raw)

    @rule()
    def forget_framework(self) -> None:
        forget_toyfw()
        self.module = None

    @rule()
    def call_fit(self) -> None:
        if self.module is None:
            return
        model = self.module.Model()
        assert model.fit(1, epochs=2) == [1.0, 0.5]
        assert model.fit_calls == 1
        if self.enabled:
            self.expected_runs += 1

    @invariant()
    def patched_exactly_when_enabled(self) -> None:
        assert len(self.store.runs) == self.expected_runs
        if self.module is None or sys.modules.get("toyfw.models") is not self.module:
            return
        raw = self.module.Trainer.__dict__["fit"]
        if self.enabled:
            assert raw is not self.original_fit
            assert raw.__wrapped__ is self.original_fit
        else:
            assert raw is self.original_fit

    def teardown(self) -> None:
        registry.disable_all()
        self._capture.__exit__(None, None, None)
        forget_toyfw()


RegistryMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_registry_state_machine = RegistryMachine.TestCase
