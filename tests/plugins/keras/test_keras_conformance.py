"""autolog.testing's conformance checks, run on the Keras plugin as any plugin author would."""

from __future__ import annotations

from typing import Any

import autolog.testing

_IMPORT = """
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import keras
"""

_EXERCISE = """
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
model.fit(np.zeros((8, 4), "float32"), np.zeros((8,), "int64"), epochs=1, verbose=0)
"""


def test_keras_plugin_passes_the_conformance_checks(keras: Any, data: Any) -> None:
    x, y = data

    def exercise() -> None:
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        model.evaluate(x, y, verbose=0)

    report = autolog.testing.check_plugin(
        "keras", exercise=exercise, import_code=_IMPORT, exercise_code=_EXERCISE
    )
    report.assert_ok()
    assert any(r.name.startswith("ordering:") for r in report.results)
