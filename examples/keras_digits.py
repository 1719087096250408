"""Train a small Keras network on scikit-learn's bundled digits and track it with autolog.

Runs offline: the 8x8 digit images ship with scikit-learn. The run goes to MLflow's
default tracking store (MLflow 3: sqlite:///mlflow.db in the working directory), or to
MLFLOW_TRACKING_URI when it is set.

    python examples/keras_digits.py

The ``autolog.autolog()`` line is the only tracking code; remove it and run
``autolog run -- python examples/keras_digits.py`` for the same result with no change to
the script.
"""

import autolog

autolog.autolog()

import os  # noqa: E402  (autolog is enabled before the framework is imported, on purpose)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def main() -> None:
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=15,
        validation_split=0.1,
        callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)],
        verbose=2,
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)  # logged as eval_* metrics
    predicted = np.argmax(model.predict(x_test, verbose=0), axis=1)
    print(f"test accuracy {accuracy:.3f} (loss {loss:.3f}); first predictions {predicted[:10]}")

    import mlflow

    # autolog wrote through its own client: the newest run of the experiment is ours.
    runs = mlflow.search_runs(
        max_results=1, order_by=["attributes.start_time DESC"], output_format="list"
    )
    if runs:
        print(f"run id: {runs[0].info.run_id}")
    uri = mlflow.get_tracking_uri()
    print(f"tracking store: {uri}")
    print(f"look at it with:  mlflow ui --backend-store-uri {uri}")


if __name__ == "__main__":
    main()
