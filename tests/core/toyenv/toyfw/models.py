"""Shapes a real framework has: inherited methods, class/static methods, a property,
an async method, a module-level function, nested calls."""

from __future__ import annotations

import asyncio


class Trainer:
    """Defines fit; Model inherits it (the patch must land here)."""

    def fit(self, x, y=None, epochs=1, callbacks=None, password=None, **kwargs):
        """Train the toy model."""
        self.fit_calls = getattr(self, "fit_calls", 0) + 1
        self.last_callbacks = callbacks
        if x == "boom":
            raise ValueError("user error from fit")
        if x == "interrupt":
            raise KeyboardInterrupt
        history = []
        for epoch in range(epochs):
            logs = {"loss": 1.0 / (epoch + 1)}
            for cb in callbacks or ():
                cb(epoch, logs)
            history.append(logs["loss"])
        if kwargs.get("nested"):
            self.fit(x, y, epochs=1)
        return history

    def evaluate(self, x, y=None):
        """Evaluate the toy model."""
        return {"loss": 0.25, "accuracy": 0.75}


class Model(Trainer):
    def __init__(self, units=4):
        self.units = units

    @classmethod
    def from_config(cls, config):
        """Build from a config."""
        return cls(**config)

    @staticmethod
    def describe(units):
        """Describe a model size."""
        return f"toy model with {units} units"

    @property
    def size(self):
        """Parameter count."""
        return self.units * 2

    async def afit(self, x, epochs=1):
        """Asynchronous training."""
        await asyncio.sleep(0)
        return [1.0] * epochs


DEFAULT_MODEL = Model(units=8)


def train(model, x, epochs=1, learning_rate=0.1, api_key=None):
    """A functional entry point that calls fit (nested patched calls)."""
    return model.fit(x, epochs=epochs)
