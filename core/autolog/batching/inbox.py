"""Reading the inbox: what callers enqueued, checked value by value (the flusher thread's).

Each record of a logger's inbox (see `autolog.batching.state`) is validated with MLflow's
rules (`autolog.batching.validation`) and appended to the current pass's metrics, params or
tags; a control record (flush, end, upload...) first sends the pass to the run log. Bad
items are reported once per key and dropped, never raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard, cast

from autolog.batching import validation
from autolog.batching.engine import EngineCore
from autolog.batching.state import (
    BAD,
    CONTROL,
    ENDING_RETRY_GRACE,
    METRIC,
    METRICS,
    PARAM,
    SEND_NOW,
    TAG,
    Barrier,
    EndOp,
    Op,
    RunState,
)


def _checked_step(step: object) -> TypeGuard[int]:
    """Whether ``step`` needs no `validation.metric_step`: a plain int that fits 64 bits.

    The per-value paths skip that call for the usual step; a larger int would make the
    store refuse the whole request, so it goes to `validation.metric_step` to be reported.
    """
    return type(step) is int and validation.INT64_MIN <= step <= validation.INT64_MAX


class InboxReader(EngineCore):
    """Turns inbox records into checked values and operations (flusher thread only)."""

    def _ingest(self, run: RunState, record: tuple[Any, ...], new_ops: list[Op]) -> None:
        kind = record[0]
        if kind == METRIC:
            _, key, value, step, timestamp, auto = record
            # A loop logging one value per step sends thousands of these, checked after its
            # last step while the caller waits: the one-loop checks take half the time.
            if auto and type(value) is float and _checked_step(step):
                self._step_metrics(run, ((key, value),), step, timestamp, new_ops)
            else:
                self._metric(run, key, value, step, timestamp, auto, new_ops)
        elif kind == METRICS:
            _, items, step, timestamp = record
            if _checked_step(step):
                self._step_metrics(run, items, step, timestamp, new_ops)
            else:
                for key, value in items:
                    self._metric(run, key, value, step, timestamp, True, new_ops)
        elif kind == PARAM:
            self._param(run, record[1], record[2], new_ops)
        elif kind == TAG:
            self._tag(run, record[1], record[2], new_ops)
        elif kind == CONTROL:
            op = record[1]
            try:
                self._log_pass(run, new_ops)
                self._cut(run, new_ops)
            finally:
                # Even when that fails (our bug, reported by the caller): a flush or an end
                # that never reached the queue would keep its caller waiting.
                if op is SEND_NOW:
                    run.release_now = True
                else:
                    if isinstance(op, Barrier) and op.final:
                        run.begin_ending(ENDING_RETRY_GRACE)
                    elif isinstance(op, EndOp):
                        run.ended = True
                    new_ops.append(op)
                    self._log_control(run, op, new_ops)
        elif kind == BAD:
            run.reporter.invalid(record[1], record[2], record[3])

    def _key(self, run: RunState, kind: str, key: object) -> str | None:
        if type(key) is str:
            checked = run.keys.get(key)
            if checked is None:
                if len(run.keys) > 50_000:
                    run.keys.clear()  # keys made up per step must not grow this forever
                checked = run.keys[key] = validation.check_key(key)
        else:
            checked = validation.check_key(key)
        if isinstance(checked, validation.Invalid):
            run.reporter.invalid(kind, key, checked.reason)
            return None
        return checked

    def _metric(
        self,
        run: RunState,
        key: object,
        value: object,
        step: object,
        timestamp: object,
        auto: bool,
        new_ops: list[Op],
    ) -> None:
        name = self._key(run, "metric", key)
        if name is None:
            return
        number = value if type(value) is float else validation.metric_value(value)
        if isinstance(number, validation.Invalid):
            run.reporter.invalid("metric", name, number.reason)
            return
        index = step if _checked_step(step) else validation.metric_step(step)
        if isinstance(index, validation.Invalid):
            run.reporter.invalid("metric", name, index.reason)
            return
        if auto:
            millis = self._untie(run, name, index, cast(int, timestamp))
        else:
            checked = validation.metric_timestamp(timestamp)
            if isinstance(checked, validation.Invalid):
                run.reporter.invalid("metric", name, checked.reason)
                return
            millis = checked
        run.pass_metrics.append((name, number, millis, index))

    def _step_metrics(
        self,
        run: RunState,
        items: Sequence[tuple[Any, Any]],
        step: int,
        timestamp: int,
        new_ops: list[Op],
    ) -> None:
        """`_metric` for each value of one ``log_metrics`` call with an int step (or of
        one ``log_metric`` call with a float value, an int step and no timestamp).

        The same checks in one loop: a per-step training loop sends several thousand of
        these per fit, and each value's method calls cost the training core more than the
        store's own work for that value.
        """
        keys = run.keys
        ties = run.ties
        append = run.pass_metrics.append
        untie = self._untie
        for key, value in items:
            name = keys.get(key) if type(key) is str else None
            if type(name) is not str:
                name = self._key(run, "metric", key)
                if name is None:
                    continue
            if type(value) is not float:
                value = validation.metric_value(value)
                if isinstance(value, validation.Invalid):
                    run.reporter.invalid("metric", name, value.reason)
                    continue
            tie = ties.get(name)
            if tie is not None and timestamp > tie[0]:  # `_untie`'s usual case, inline
                tie[0] = timestamp
                tie[1] = {step: timestamp}
                millis = timestamp
            else:
                millis = untie(run, name, step, timestamp)
            append((name, value, millis, step))

    @staticmethod
    def _untie(run: RunState, key: str, step: int, timestamp: int) -> int:
        # The store orders a key's history by (timestamp, step, value): two values of one
        # key and step logged within the same millisecond would come back sorted by value.
        # Nudge the later one 1 ms forward so the history keeps the logging order.
        state = run.ties.get(key)
        if state is None:
            run.ties[key] = [timestamp, {step: timestamp}]
            return timestamp
        if timestamp > state[0]:
            state[0] = timestamp
            state[1] = {step: timestamp}
            return timestamp
        previous = state[1].get(step)
        if previous is not None and timestamp <= previous:
            timestamp = previous + 1
            state[0] = max(state[0], timestamp)
        state[1][step] = timestamp
        return timestamp

    def _param(self, run: RunState, key: object, value: object, new_ops: list[Op]) -> None:
        checked = self._text_item(run, "param", key, value, validation.MAX_PARAM_VALUE_LENGTH)
        if checked is None:
            return
        name, text = checked
        seen = run.params.get(name)
        if seen is not None:
            if seen != text:
                run.reporter.param_conflict(name, seen, text)
            return
        run.params[name] = text
        run.pass_params.append((name, text))

    def _tag(self, run: RunState, key: object, value: object, new_ops: list[Op]) -> None:
        checked = self._text_item(run, "tag", key, value, validation.MAX_TAG_VALUE_LENGTH)
        if checked is not None:
            run.pass_tags.append(checked)

    def _text_item(
        self, run: RunState, kind: str, key: object, value: object, limit: int
    ) -> tuple[str, str] | None:
        """A param's or tag's checked ``(name, text)``, or ``None`` once reported dropped."""
        name = self._key(run, kind, key)
        if name is None:
            return None
        if isinstance(value, validation.Invalid):
            run.reporter.invalid(kind, name, value.reason)
            return None
        text, problem = validation.text_value(value, limit)
        if problem:
            run.reporter.invalid(kind, name, problem, action="changed")
        return name, text
