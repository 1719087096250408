"""autolog.testing's conformance kit on the Estimator plugin, and patch identity details."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

import autolog
import autolog.testing

pytestmark = pytest.mark.tf215

IMPORT_CODE = textwrap.dedent(
    """
    import os, tempfile
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    """
)

EXERCISE_CODE = textwrap.dedent(
    """
    def _input_fn():
        x = np.ones((4, 2), np.float32)
        return tf.data.Dataset.from_tensor_slices(({"x": x}, np.ones(4, np.float32))).batch(2)

    def _model_fn(features, labels, mode):
        w = tf.compat.v1.get_variable("w", [2])
        loss = tf.reduce_mean(tf.square(tf.reduce_sum(features["x"] * w, 1) - labels))
        step = tf.compat.v1.train.get_global_step()
        train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, step)
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)

    tf.estimator.Estimator(_model_fn, model_dir=tempfile.mkdtemp()).train(_input_fn, steps=1)
    """
)


def test_conformance(tf: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(IMPORT_CODE, namespace)

    def exercise() -> None:
        exec(EXERCISE_CODE, dict(namespace))

    report = autolog.testing.check_plugin(
        "tf_estimator",
        exercise=exercise,
        import_code=IMPORT_CODE,
        exercise_code=EXERCISE_CODE,
        threads=4,
    )
    report.assert_ok()


def test_patches_land_on_estimator_and_disable_restores_them(tf: Any) -> None:
    from tensorflow_estimator.python.estimator import estimator, training

    originals = {
        name: estimator.Estimator.__dict__[name]
        for name in ("train", "evaluate", "export_saved_model")
    }
    original_tae = training.train_and_evaluate
    autolog.autolog(frameworks=["tf_estimator"])
    for name, original in originals.items():
        assert estimator.Estimator.__dict__[name] is not original
        assert name not in tf.estimator.DNNClassifier.__dict__  # inherited, not copied
    assert training.train_and_evaluate is not original_tae
    autolog.disable(["tf_estimator"])
    for name, original in originals.items():
        assert estimator.Estimator.__dict__[name] is original
    assert training.train_and_evaluate is original_tae


def test_reexported_train_and_evaluate_is_restored_after_enable_import_disable(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    code = textwrap.dedent(
        """
        import autolog
        autolog.autolog(frameworks=["tf_estimator"])
        import tensorflow as tf
        from tensorflow_estimator.python.estimator import training
        tf.estimator.train_and_evaluate  # tf.estimator is lazy: import it while enabled
        autolog.disable()
        assert tf.estimator.train_and_evaluate is training.train_and_evaluate, "not restored"
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-800:]
