"""Train a tf.estimator DNNClassifier on scikit-learn's digits, autologged to MLflow.

Needs the TensorFlow 2.15 stack (``tf.estimator`` was removed in 2.16)::

    pip install -e ".[tf-estimator]" scikit-learn
    python examples/estimator_digits.py

The training code below is plain Estimator code: the only autolog line is the call at the
top. The run gets the estimator's hyperparameters as params, the loss every 100 steps (the
estimator's ``log_step_count_steps``) and TensorBoard's scalars as metrics, the evaluation
as ``eval_*`` metrics, and the final checkpoint plus the exported SavedModel as artifacts. The data is scikit-learn's bundled
copy of the UCI digits (1,797 8x8 images): nothing is downloaded.
"""

import os

os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import autolog

autolog.autolog()

import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

BATCH = 64
STEPS = 1_000


def input_fn(x: np.ndarray, y: np.ndarray, *, train: bool):
    def fn() -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(({"pixels": x}, y))
        if train:
            ds = ds.shuffle(len(x), seed=0).repeat()
        return ds.batch(BATCH)

    return fn


def main() -> None:
    tf.get_logger().setLevel("ERROR")
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel intensities are 0..16
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )

    model_dir = tempfile.mkdtemp(prefix="estimator-digits-")
    estimator = tf.estimator.DNNClassifier(
        hidden_units=[64, 32],
        feature_columns=[tf.feature_column.numeric_column("pixels", shape=(64,))],
        n_classes=10,
        dropout=0.1,
        optimizer=tf.keras.optimizers.legacy.Adam(learning_rate=0.005),
        model_dir=model_dir,
        config=tf.estimator.RunConfig(tf_random_seed=0, save_summary_steps=50),
    )
    estimator.train(input_fn(x_train, y_train, train=True), steps=STEPS)
    metrics = estimator.evaluate(input_fn(x_test, y_test, train=False))

    serving_input_fn = tf.estimator.export.build_raw_serving_input_receiver_fn(
        {"pixels": tf.zeros([1, 64])}
    )
    estimator.export_saved_model(os.path.join(model_dir, "export"), serving_input_fn)

    print(f"test accuracy: {metrics['accuracy']:.3f} after {metrics['global_step']} steps")
    client = MlflowClient()
    (run,) = client.search_runs(
        ["0"],
        filter_string="tags.`autolog.plugin` = 'tf_estimator'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    print(f"MLflow run: {run.info.run_id}")
    print(f"Look at it: mlflow ui --backend-store-uri {os.environ['MLFLOW_TRACKING_URI']}")


if __name__ == "__main__":
    main()
