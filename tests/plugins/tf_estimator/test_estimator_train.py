"""Estimator.train through autolog.autolog(): what a user finds in the run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

pytestmark = pytest.mark.tf215

STEPS = 26


def _steps(run: Any, key: str) -> list[int]:
    return [step for step, _ in run.metric_history(key)]


def _assert_summary_steps(run: Any, key: str, *, first: int, last: int) -> None:
    """Steps of a summary Estimator wrote: the first is exact, later ones may slip by one.

    SummarySaverHook schedules from an unordered read of the global step (a TensorFlow
    race), then writes at an exact read; so only the first step and the range are fixed.
    """
    steps = _steps(run, key)
    assert steps and steps[0] == first, steps
    assert len(steps) >= 2 and steps == sorted(set(steps)) and steps[-1] <= last, steps


@pytest.fixture
def linear(tf: Any, feature_columns: list[Any], make_config: Any, tmp_path: Path) -> Any:
    return tf.estimator.LinearClassifier(
        feature_columns, model_dir=str(tmp_path / "linear"), config=make_config()
    )


@pytest.fixture
def custom(tf: Any, custom_model_fn: Any, make_config: Any, tmp_path: Path) -> Any:
    return tf.estimator.Estimator(
        custom_model_fn,
        model_dir=str(tmp_path / "custom"),
        params={"learning_rate": 0.5, "architecture": {"units": 1}},
        config=make_config(),
    )


def test_canned_linear_classifier_run(
    tf: Any, enable: Any, store: Any, linear: Any, input_fn: Any, artifact_dir: Any
) -> None:
    enable()
    linear.train(input_fn(), steps=STEPS)

    (run,) = store.runs.values()
    assert run.status == "FINISHED"
    assert run.tags["autolog.plugin"] == "tf_estimator"
    params = run.params
    assert params["estimator_class"] == "LinearClassifier"
    assert params["steps"] == str(STEPS)
    assert params["max_steps"] == "None"
    assert params["model_dir"] == linear.model_dir
    assert params["n_classes"] == "2"
    assert params["optimizer"] == "Ftrl"
    assert params["feature_columns"] == '["x"]'
    assert params["save_summary_steps"] == "5"
    assert params["tf_random_seed"] == "7"
    # log_every_n_steps unset: the estimator's own log_step_count_steps (5) applies.
    assert _steps(run, "loss") == [1, 6, 11, 16, 21, 26]
    assert all(value > 0 for _, value in run.metric_history("loss"))
    assert _steps(run, "global_step/sec")
    assert all(0 < step <= STEPS for step in _steps(run, "global_step/sec"))

    # The final checkpoint, restorable on its own.
    checkpoint = artifact_dir(run) / "checkpoint"
    assert run.tags["autolog.tf_estimator.checkpoint"] == f"checkpoint/model.ckpt-{STEPS}"
    restored = tf.train.latest_checkpoint(str(checkpoint))
    assert restored is not None and restored.endswith(f"model.ckpt-{STEPS}")
    name = "linear/linear_model/x/weights"
    assert tf.train.load_variable(restored, name) == pytest.approx(linear.get_variable_value(name))
    assert not any(key.startswith("tensorboard") for key in run.artifacts)


def test_canned_dnn_classifier_run(
    tf: Any,
    enable: Any,
    store: Any,
    feature_columns: list[Any],
    make_config: Any,
    input_fn: Any,
    artifact_dir: Any,
    tmp_path: Path,
) -> None:
    enable(log_tensorboard=True)
    est = tf.estimator.DNNClassifier(
        [4, 3],
        feature_columns,
        dropout=0.1,
        optimizer=tf.keras.optimizers.legacy.Adagrad(learning_rate=0.1),
        model_dir=str(tmp_path / "dnn"),
        config=make_config(),
    )
    est.train(input_fn(), steps=12)
    (run,) = store.runs.values()
    assert run.params["estimator_class"] == "DNNClassifier"
    assert run.params["hidden_units"] == "[4, 3]"
    assert run.params["dropout"] == "0.1"
    assert run.params["optimizer"] == "Adagrad"
    assert float(run.params["learning_rate"]) == pytest.approx(0.1)
    assert _steps(run, "loss") == [1, 6, 11]
    # Scalar summaries the canned DNN writes itself.
    _assert_summary_steps(run, "dnn/hiddenlayer_0/fraction_of_zero_values", first=1, last=12)
    events = list((artifact_dir(run) / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1


def test_custom_model_fn_run(enable: Any, store: Any, custom: Any, input_fn: Any) -> None:
    enable(log_every_n_steps=2)
    custom.train(input_fn(), max_steps=9)
    (run,) = store.runs.values()
    assert run.status == "FINISHED"
    assert run.params["estimator_class"] == "Estimator"
    assert run.params["learning_rate"] == "0.5"
    assert run.params["architecture.units"] == "1"
    assert run.params["max_steps"] == "9"
    assert run.params["steps"] == "None"
    assert _steps(run, "loss") == [1, 3, 5, 7, 9]
    # tf.compat.v1.summary.scalar in the model_fn, every save_summary_steps (5) steps.
    _assert_summary_steps(run, "mean_probability", first=1, last=9)
    # The loss hook owns "loss": the identical summary is not logged a second time.
    assert len(run.metric_history("loss")) == 5


def test_global_log_every_n_steps_and_no_loss_hook(
    enable: Any, store: Any, custom: Any, input_fn: Any
) -> None:
    import autolog

    autolog.autolog(frameworks=["tf_estimator"], log_every_n_steps=4)
    custom.train(input_fn(), steps=9)
    assert _steps(store.last_run(), "loss") == [1, 5, 9]

    enable(log_every_n_steps=0)  # no loss hook: the loss summary is logged instead
    custom.train(input_fn(), steps=10)
    _assert_summary_steps(store.last_run(), "loss", first=10, last=19)


def test_option_switches(enable: Any, store: Any, custom: Any, input_fn: Any) -> None:
    enable(log_summaries=False, log_checkpoint=False)
    custom.train(input_fn(), steps=6)
    run = store.last_run()
    assert set(run.metrics) == {"loss"}
    assert not run.artifacts

    import autolog

    autolog.autolog(frameworks=["tf_estimator"], log_models=False)
    custom.train(input_fn(), steps=6)
    assert not store.last_run().artifacts


def test_each_train_call_is_a_run(enable: Any, store: Any, custom: Any, input_fn: Any) -> None:
    enable()
    custom.train(input_fn(), steps=5)
    custom.train(input_fn(), steps=5)
    first, second = store.runs.values()
    assert _steps(first, "loss") == [1]
    assert _steps(second, "loss") == [6]
    # The second run only holds the second training's summaries.
    assert _steps(second, "mean_probability")[0] == 6
    assert _steps(first, "mean_probability")[0] == 1
    assert second.tags["autolog.tf_estimator.checkpoint"] == "checkpoint/model.ckpt-10"


def test_logs_into_the_users_active_run_and_leaves_it_open(
    enable: Any, store: Any, custom: Any, input_fn: Any
) -> None:
    run_id = store.start_user_run()
    enable()
    custom.train(input_fn(), steps=3)
    (run,) = store.runs.values()
    assert run.run_id == run_id
    assert run.status == "RUNNING"
    assert _steps(run, "loss") == [1]


@pytest.mark.parametrize("form", ["list", "tuple", "positional", "none"])
def test_user_hooks_untouched_and_still_run(
    tf: Any, enable: Any, store: Any, custom: Any, input_fn: Any, form: str
) -> None:
    class CountingHook(tf.estimator.SessionRunHook):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.runs = 0

        def after_run(self, run_context: Any, run_values: Any) -> None:
            self.runs += 1

    enable(log_every_n_steps=1)
    hook = CountingHook()
    hooks: Any = {"list": [hook], "tuple": (hook,), "positional": [hook], "none": None}[form]
    before = list(hooks) if hooks is not None else None
    if form == "positional":
        custom.train(input_fn(), hooks, 4)
    elif form == "none":
        custom.train(input_fn(), steps=4)
    else:
        custom.train(input_fn(), hooks=hooks, steps=4)

    if hooks is not None:
        assert list(hooks) == before  # same contents, and (for a list) the same object
        assert all(h is hook for h in hooks)
        assert hook.runs == 4
    assert _steps(store.last_run(), "loss") == [1, 2, 3, 4]


def test_failing_model_fn_fails_the_run_and_raises_unchanged(
    tf: Any, enable: Any, store: Any, custom_model_fn: Any, input_fn: Any, tmp_path: Path
) -> None:
    enable()
    est = tf.estimator.Estimator(
        custom_model_fn, model_dir=str(tmp_path / "fails"), params={"fail": True}
    )
    with pytest.raises(RuntimeError, match="model_fn failed on purpose") as info:
        est.train(input_fn(), steps=3)
    assert type(info.value) is RuntimeError
    # The traceback still ends in the user's model_fn, not in autolog.
    assert info.traceback[-1].name == "model_fn"
    (run,) = store.runs.values()
    assert run.status == "FAILED"
    assert run.params["fail"] == "True"


def test_failing_training_step_keeps_what_was_logged(
    tf: Any, enable: Any, store: Any, custom: Any, input_fn: Any
) -> None:
    class Boom(tf.estimator.SessionRunHook):  # type: ignore[misc,name-defined]
        calls = 0

        def after_run(self, run_context: Any, run_values: Any) -> None:
            self.calls += 1
            if self.calls == 4:
                raise ValueError("stop at step 4")

    enable(log_every_n_steps=1)
    with pytest.raises(ValueError, match="stop at step 4"):
        custom.train(input_fn(), steps=10, hooks=[Boom()])
    run = store.last_run()
    assert run.status == "FAILED"
    # The user's hooks run before autolog's (it appends), so step 4 never got logged.
    assert _steps(run, "loss") == [1, 2, 3]


def test_non_chief_worker_writes_nothing(
    enable: Any, store: Any, custom: Any, input_fn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    enable()
    # The estimator was built as a local job (so it trains here, in-process); the plugin
    # only reads TF_CONFIG when deciding who logs.
    cluster = {"chief": ["localhost:1"], "worker": ["localhost:2"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    )
    custom.train(input_fn(), steps=3)
    assert store.runs == {}
    assert custom.get_variable_value("global_step") == 3
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})
    )
    custom.train(input_fn(), steps=3)
    assert len(store.runs) == 1


def test_disable_restores_plain_training(
    enable: Any, store: Any, custom: Any, input_fn: Any
) -> None:
    import autolog

    enable()
    autolog.disable(["tf_estimator"])
    custom.train(input_fn(), steps=2)
    assert store.runs == {}
    assert os.path.isdir(custom.model_dir)
