"""The loss-logging SessionRunHook, used directly (no autolog) with an in-memory sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow_estimator")

from autolog_tf_estimator.hooks import make_loss_hook
from autolog_tf_estimator.summaries import EventTail
from tests.plugins.tf_estimator.conftest import BATCH, N_ROWS

pytestmark = pytest.mark.tf215


@pytest.fixture
def estimator(tf: Any, custom_model_fn: Any, make_config: Any, tmp_path: Path) -> Any:
    return tf.estimator.Estimator(
        custom_model_fn,
        model_dir=str(tmp_path / "model"),
        params={"learning_rate": 0.5},
        config=make_config(),
    )


def test_loss_every_n_steps_at_the_global_step(
    estimator: Any, input_fn: Any, sink: Any, store: Any
) -> None:
    estimator.train(input_fn(), steps=23, hooks=[make_loss_hook(sink, 5)])
    history = store.last_run().metric_history("loss")
    assert [step for step, _ in history] == [1, 6, 11, 16, 21]
    # Estimator's own "loss" summary (save_summary_steps=5) agrees wherever both logged.
    # Its cadence can slip by a step: SummarySaverHook schedules from an unordered read of
    # the global step, and only the step it writes at is read exactly.
    written = {
        s.step: s.value
        for s in EventTail(estimator.model_dir, from_start=True).poll()
        if s.tag == "loss"
    }
    common = [(step, value) for step, value in history if step in written]
    assert common and common[0][0] == 1
    for step, value in common:
        assert value == pytest.approx(written[step])


def test_steps_continue_across_train_calls(
    estimator: Any, input_fn: Any, sink: Any, store: Any
) -> None:
    estimator.train(input_fn(), steps=4, hooks=[make_loss_hook(sink, 1)])
    estimator.train(input_fn(), steps=3, hooks=[make_loss_hook(sink, 2)])
    steps = [step for step, _ in store.last_run().metric_history("loss")]
    assert steps == [1, 2, 3, 4, 5, 7]


def test_callback_runs_after_each_logged_step(estimator: Any, input_fn: Any, sink: Any) -> None:
    seen: list[int] = []
    estimator.train(input_fn(), steps=6, hooks=[make_loss_hook(sink, 3, seen.append)])
    assert seen == [1, 4]


class _SendingSink:
    """Records, in order, the steps logged and each call to ``send_pending``."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def log_metric(self, key: str, value: Any, step: Any = None, timestamp: Any = None) -> None:
        self.events.append(step)

    def send_pending(self) -> None:
        self.events.append("send")


@pytest.mark.parametrize(
    ("train_kwargs", "first_step"),
    [({"steps": 5}, 1), ({"max_steps": 5}, 1), ({"steps": 3}, 3)],
    ids=["steps", "max_steps", "resumed"],
)
def test_last_values_are_sent_right_after_the_last_step(
    estimator: Any, input_fn: Any, train_kwargs: dict[str, int], first_step: int
) -> None:
    if first_step > 1:
        estimator.train(input_fn(), steps=first_step - 1)  # a checkpoint to resume from
    sink = _SendingSink()
    hook = make_loss_hook(sink, 3, on_end=lambda: sink.events.append("end"), **train_kwargs)
    estimator.train(input_fn(), hooks=[hook], **train_kwargs)
    # Every third step is logged; the last one (5) is not due, yet the send follows it.
    expected: list[Any] = [step for step in range(first_step, 6) if (step - first_step) % 3 == 0]
    assert sink.events == [*expected, "send", "end", "send"]


def test_without_a_step_limit_the_values_wait_for_the_session_end(
    estimator: Any, input_fn: Any
) -> None:
    sink = _SendingSink()
    # One pass over the data, then the input ends training.
    estimator.train(input_fn(repeat=False), hooks=[make_loss_hook(sink, 1, on_end=lambda: None)])
    assert sink.events == [*range(1, N_ROWS // BATCH + 1), "send"]


def test_rejects_a_non_positive_cadence(tf: Any, sink: Any) -> None:
    with pytest.raises(ValueError, match="every_n_steps"):
        make_loss_hook(sink, 0)


def test_is_a_session_run_hook(tf: Any, sink: Any) -> None:
    assert isinstance(make_loss_hook(sink, 1), tf.estimator.SessionRunHook)


def test_resyncing_with_the_true_global_step_gives_the_same_steps(
    estimator: Any, input_fn: Any, sink: Any, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autolog_tf_estimator import hooks

    monkeypatch.setattr(hooks, "RESYNC_SECS", 0.0)  # read the global step on every log
    estimator.train(input_fn(), steps=7, hooks=[make_loss_hook(sink, 3)])
    assert [step for step, _ in store.last_run().metric_history("loss")] == [1, 4, 7]


class _BrokenSink:
    def __init__(self) -> None:
        self.calls = 0

    def log_metric(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        raise OSError("tracking store exploded")


def test_a_failing_hook_never_breaks_training(
    estimator: Any, input_fn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autolog.safety import AutologWarning

    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    sink = _BrokenSink()
    with pytest.warns(AutologWarning, match="tf_estimator.*loss hook after_run"):
        estimator.train(input_fn(), steps=5, hooks=[make_loss_hook(sink, 1)])
    assert estimator.get_variable_value("global_step") == 5
    assert sink.calls == 1  # switched off after the first failure


def test_a_failing_hook_raises_under_autolog_testing(
    estimator: Any, input_fn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOLOG_TESTING", "1")
    with pytest.raises(OSError, match="exploded"):
        estimator.train(input_fn(), steps=2, hooks=[make_loss_hook(_BrokenSink(), 1)])
