"""The ``SessionRunHook`` that logs the training loss every N global steps.

The class is built on first use, because this package is imported (by entry-point
discovery) in environments without TensorFlow.

The step logged is the global step once the training step is done, the value TensorBoard
shows for the same step. Fetching the global step alongside the loss would be cheaper but
is a race (the read and the increment are not ordered in the graph), so the hook reads the
global step exactly when the session is created and counts the runs after that: Estimator's
training loop runs its ``train_op``, which increments the global step once, per run.
Every ``RESYNC_SECS`` it re-reads the true value after a logged step, which keeps the count
right when other workers advance the step too (asynchronous parameter-server training).

On steps that are not due the hook fetches nothing, so the session call is exactly the one
Estimator would have made; on due steps it adds the loss, which the loop fetches anyway.

Given a `FeatureSample` (with ``log_models`` on), the hook also fetches the first rows of the
features on the training's first step, in the same ``session.run`` (the batch that step
trains on, so the input is read no more than without autolog). That first step goes through
methods set on the instance in ``begin``, which remove themselves: every later step runs the
class's methods, exactly as without a sample. With a sample and ``every_n_steps=0`` the
hook only takes those rows.

When ``train`` was given ``steps`` or ``max_steps`` the hook knows which step is the last,
and right after it asks the sink to send what is buffered: the last values then reach the
store while Estimator still saves its final checkpoint and closes the session, rather than
after ``train`` returns.

The hook runs inside the user's ``train`` call, where the core's guards do not reach: each
of its methods reports its own failures through `autolog.guard` (a
warning; an exception under ``AUTOLOG_TESTING=1``) and then switches the hook off, so
training carries on unlogged rather than failing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from autolog.plugin import RunSink, guard

if TYPE_CHECKING:
    from autolog_tf_estimator.examples import FeatureSample

__all__ = ["LOSS_METRIC", "RESYNC_SECS", "make_loss_hook"]

LOSS_METRIC = "loss"
RESYNC_SECS = 10.0

StepCallback = Callable[[int], None]
EndCallback = Callable[[], None]
_F = TypeVar("_F", bound=Callable[..., Any])

PLUGIN = "tf_estimator"


def _guarded(method: _F) -> _F:
    guarding = guard(PLUGIN, f"loss hook {method.__name__}")

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        with guarding:
            try:
                return method(self, *args, **kwargs)
            except Exception:
                self._loss = None  # stop fetching and logging for the rest of this training
                raise
        return None

    return guarded  # type: ignore[return-value]


def make_loss_hook(
    sink: RunSink,
    every_n_steps: int,
    on_logged: StepCallback | None = None,
    *,
    on_end: EndCallback | None = None,
    steps: int | None = None,
    max_steps: int | None = None,
    sample: FeatureSample | None = None,
) -> Any:
    """A ``tf.estimator.SessionRunHook`` logging ``loss`` into ``sink`` every N steps.

    ``on_logged(step)`` runs on the training thread after each logged step; the train
    handler uses it to pick up newly written summaries while training goes on.
    ``on_end()`` runs when the session ends, after Estimator's own hooks have written
    their last summaries. ``steps``/``max_steps`` are ``train``'s: they tell the hook
    where training stops. ``sample``: record the first step's feature rows into it (the
    model's input example); then ``every_n_steps`` may be 0, for no loss at all.
    """
    return _hook_class()(sink, every_n_steps, on_logged, on_end, steps, max_steps, sample)


@functools.cache
def _hook_class() -> type:
    import tensorflow as tf

    class LossLoggingHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
        """Logs the training loss at the first step and then every ``every_n_steps``."""

        def __init__(
            self,
            sink: RunSink,
            every_n_steps: int,
            on_logged: StepCallback | None,
            on_end: EndCallback | None,
            steps: int | None,
            max_steps: int | None,
            sample: FeatureSample | None = None,
        ) -> None:
            if every_n_steps < (0 if sample is not None else 1):
                raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
            self._sink = sink
            self._steps = steps
            self._max_steps = max_steps
            self._last_step = -1  # unknown: training runs until its input ends
            self._every = every_n_steps
            self._on_logged = on_logged
            self._on_end = on_end
            self._loss: Any = None
            self._global_step: Any = None
            self._step = 0  # the global step after the last completed run
            self._logged_at: int | None = None
            self._next_sync = 0.0
            self._pending = False
            self._fetch: Any = None
            self._sample = sample
            self._sample_fetch: Any = None

        @_guarded
        def begin(self) -> None:
            if self._sample is not None:
                self._begin_sample()
            if self._every < 1:
                return
            losses = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.LOSSES)
            self._global_step = _global_step_read()
            # Estimator appends the EstimatorSpec's loss last; a model_fn's own
            # tf.compat.v1.losses.* calls land in the same collection before it.
            self._loss = losses[-1] if losses and self._global_step is not None else None
            if self._loss is not None:
                self._fetch = tf.compat.v1.train.SessionRunArgs(self._loss)

        def _begin_sample(self) -> None:
            assert self._sample is not None
            with guard(PLUGIN, "input example"):
                self._sample_fetch = self._sample.take_fetches()
                if self._sample_fetch is not None:
                    # Instance attributes shadow the class's methods for the first step.
                    self.before_run = self._first_before_run
                    self.after_run = self._first_after_run

        def _first_before_run(self, run_context: Any) -> Any:
            args = type(self).before_run(self, run_context)
            fetches = {"example": self._sample_fetch}
            if args is not None:
                fetches["loss"] = args.fetches
            return tf.compat.v1.train.SessionRunArgs(fetches)

        def _first_after_run(self, run_context: Any, run_values: Any) -> None:
            # Both removed here, once a step has run with the example fetch (a step that
            # raised, and that a recoverable session retries, has not): later steps run
            # the class's methods.
            del self.before_run, self.after_run
            results = run_values.results
            self._sample_fetch = None
            with guard(PLUGIN, "input example"):
                assert self._sample is not None
                self._sample.record(results["example"])
            type(self).after_run(
                self,
                run_context,
                tf.compat.v1.train.SessionRunValues(
                    results=results.get("loss"),
                    options=run_values.options,
                    run_metadata=run_values.run_metadata,
                ),
            )

        @_guarded
        def after_create_session(self, session: Any, coord: Any) -> None:
            if self._loss is not None:
                self._step = int(session.run(self._global_step))
                self._next_sync = time.monotonic() + RESYNC_SECS
                # What Estimator's own StopAtStepHook stops at.
                if isinstance(self._steps, int) and self._steps > 0:
                    self._last_step = self._step + self._steps
                elif isinstance(self._max_steps, int) and self._max_steps > 0:
                    self._last_step = self._max_steps

        # The two per-step methods handle their own errors rather than going through
        # `_guarded`: a small model's step takes a fraction of a millisecond, and each
        # Python call between two session runs makes it longer.
        def before_run(self, run_context: Any) -> Any:
            try:
                if self._loss is None:
                    return None
                logged_at = self._logged_at
                self._pending = logged_at is None or self._step + 1 >= logged_at + self._every
                return self._fetch if self._pending else None
            except Exception as exc:
                self._fail("before_run", exc)
                return None

        def after_run(self, run_context: Any, run_values: Any) -> None:
            try:
                self._step += 1
                if self._pending and self._loss is not None:
                    now = time.monotonic()
                    if now >= self._next_sync:
                        self._step = int(run_context.session.run(self._global_step))
                        self._next_sync = now + RESYNC_SECS
                    step = self._logged_at = self._step
                    self._sink.log_metric(LOSS_METRIC, float(run_values.results), step=step)
                    if self._on_logged is not None:
                        self._on_logged(step)
                if self._step == self._last_step:
                    self._sink.send_pending()
            except Exception as exc:
                self._fail("after_run", exc)

        @_guarded
        def end(self, session: Any) -> None:
            # Estimator's summary and step-counter hooks come first in the session's list
            # and have flushed their last values by now.
            if self._on_end is not None:
                self._on_end()
                self._sink.send_pending()

        def _fail(self, method: str, exc: Exception) -> None:
            self._loss = None  # stop fetching and logging for the rest of this training
            with guard(PLUGIN, f"loss hook {method}"):
                raise exc

    LossLoggingHook.__module__ = __name__
    return LossLoggingHook


def _global_step_read() -> Any:
    """The global step as Estimator's own hooks read it, else the variable itself.

    Estimator's checkpoint and step-counter hooks fetch the read tensor when the session
    is created, so fetching that same tensor reuses the session's existing executor;
    fetching the variable instead would make TensorFlow build a new one (about 4 ms).
    """
    import tensorflow as tf

    try:
        from tensorflow.python.training import training_util

        read = training_util._get_or_create_global_step_read()
        if read is not None:
            return read
    except Exception:  # a TensorFlow laid out differently: the public way
        pass
    return tf.compat.v1.train.get_global_step()
