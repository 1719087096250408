"""What happens around one wrapped call.

The order is fixed: decide whether this call logs at all (plugin enabled, chief, not a
skipped nested call), open or join a run, bind the arguments, capture params, run the
``before`` hook, call the user's function exactly once, run ``after`` or ``on_error``,
flush and end the run. Everything except the user's function is guarded: an exception
there is reported by `autolog.safety` and the call goes on as if autolog were off.
The user's own exception is re-raised with a bare ``raise``: same object, same traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from autolog import safety, session
from autolog._version import __version__
from autolog.applied import Applied, EnabledLookup, EnabledPlugin
from autolog.plugin import Call, Patch
from autolog.redaction import redact_mapping

if TYPE_CHECKING:
    from autolog.session import ManagedSink

__all__ = ["make_wrapper_function"]

WrapperFunction = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


class _Plan:
    """What autolog will do around one call, decided before the call runs."""

    __slots__ = ("call", "owned", "sink", "token")

    def __init__(self) -> None:
        self.call: Call | None = None
        self.sink: ManagedSink | None = None
        self.owned = False  # autolog created the run, so autolog ends it
        self.token: Any = None


def make_wrapper_function(applied: Applied, lookup: EnabledLookup) -> WrapperFunction:
    """The wrapt wrapper function for one applied patch.

    ``lookup(plugin_name)`` is asked on every call whether the plugin is still enabled
    (and with which options); the registry passes its own `Registry.enabled`, so this
    module never imports the registry.
    """
    if applied.is_async:

        def async_wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            return _call_async(applied, lookup, wrapped, instance, args, kwargs)

        return async_wrapper

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        plan = _prepare(applied, lookup, instance, args, kwargs)
        if plan is None:
            return wrapped(*args, **kwargs)
        call_args, call_kwargs = _arguments_for(plan, args, kwargs)
        try:
            result = wrapped(*call_args, **call_kwargs)
        except BaseException as exc:
            _finish(applied, plan, error=exc)
            raise
        _finish(applied, plan, result=result)
        return result

    return wrapper


async def _call_async(
    applied: Applied,
    lookup: EnabledLookup,
    wrapped: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    plan = _prepare(applied, lookup, instance, args, kwargs)
    if plan is None:
        return await wrapped(*args, **kwargs)
    call_args, call_kwargs = _arguments_for(plan, args, kwargs)
    try:
        result = await wrapped(*call_args, **call_kwargs)
    except BaseException as exc:
        _finish(applied, plan, error=exc)
        raise
    _finish(applied, plan, result=result)
    return result


def _arguments_for(
    plan: _Plan, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if plan.call is None:
        return args, kwargs
    try:
        return plan.call.call_args()
    except Exception as exc:
        safety.report_failure(plan.call.plugin.name, "rebuilding the call's arguments", exc)
        return args, kwargs


# Before the call -----------------------------------------------------------------------


def _prepare(
    applied: Applied,
    lookup: EnabledLookup,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> _Plan | None:
    """Decide and set up; ``None`` means: run the original untouched."""
    enabled = lookup(applied.plugin_name) if applied.active else None
    if enabled is None:
        return None
    patch = applied.patch
    outer = session.current_call()
    if outer is not None and outer.plugin == applied.plugin_name and patch.nested == "skip":
        return None
    if outer is None and not patch.owns_run:
        return None
    plugin = enabled.plugin
    plan = _Plan()
    try:
        if not plugin.is_chief():
            return None
        plan.sink, plan.owned, opener = _open_run(enabled, outer, instance, patch)
    except Exception as exc:
        safety.report_failure(plugin.name, f"starting a run for {patch.target}", exc)
        return None
    if plan.sink is None:
        return None
    plan.token = session.enter(session.ActiveCall(plugin=plugin.name, sink=plan.sink))
    try:
        bound = applied.signature.bind(*args, **kwargs)
    except TypeError:
        # The caller's arguments do not fit: the original will raise the user's TypeError.
        return plan
    call = Call(
        plugin=plugin,
        patch=patch,
        instance=instance,
        bound=bound,
        signature=applied.signature,
        options=enabled.options,
        sink=plan.sink,
    )
    try:
        if opener and patch.capture:
            plan.sink.log_params(_captured(call, patch.capture))
        if patch.before is not None:
            patch.before(call)
    except Exception as exc:
        safety.report_failure(plugin.name, f"before-hook of {patch.target}", exc)
        # Whatever the hook did to the arguments is dropped: the user's own go through.
        call = Call(
            plugin=plugin,
            patch=patch,
            instance=instance,
            bound=applied.signature.bind(*args, **kwargs),
            signature=applied.signature,
            options=enabled.options,
            sink=plan.sink,
        )
        call.state["before_failed"] = True
    try:
        # The params just logged travel while the framework builds its model, instead of
        # with the first values of training (or, for a short call, at its end).
        plan.sink.send_pending()
    except Exception as exc:
        safety.report_failure(plugin.name, f"sending the params of {patch.target}", exc)
    plan.call = call
    return plan


def _open_run(
    enabled: EnabledPlugin, outer: session.ActiveCall | None, instance: Any, patch: Patch
) -> tuple[ManagedSink | None, bool, bool]:
    """(sink, autolog owns the run, this call opened it) for a call that logs."""
    if outer is not None:
        if patch.owns_run:
            # evaluate() after a train_and_evaluate() finds the run its train() joined.
            session.instance_runs.remember(instance, outer.sink)
        return outer.sink, False, False
    backend = session.get_backend()
    tags = _run_tags(enabled)
    active = backend.active_run_id()
    if active is not None:
        if enabled.exclusive:
            return None, False, False
        sink = backend.open(active, tags)
        with _let_go_on_error(sink, owned=False):
            sink.set_tags(tags)
            session.instance_runs.remember(instance, sink)
        return sink, False, True
    if patch.reuse_instance_run:
        previous = session.instance_runs.lookup(instance)
        previous_id = None if previous is None else previous.run_id
        if previous_id is not None:
            return backend.open(previous_id, tags), False, False
        same_run = getattr(previous, "same_run", None)
        if callable(same_run):
            # The earlier call's run is not in the store yet (the store is down, or slow):
            # this call joins it all the same, so `fit` then `evaluate` is one run.
            return same_run(), False, False
    sink = backend.open(None, tags)
    with _let_go_on_error(sink, owned=True):
        session.instance_runs.remember(instance, sink)
    return sink, True, True


@contextlib.contextmanager
def _let_go_on_error(sink: ManagedSink, *, owned: bool) -> Iterator[None]:
    """If setting up a just-opened ``sink`` fails, end or close it before the error goes on.

    The call then runs without autolog; without this, the run autolog created would stay
    RUNNING in the store, and the sink's logger in the batching engine, for good.
    """
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            if owned:
                sink.end_run("FAILED", timeout=session.END_OF_RUN_TIMEOUT)
            else:
                sink.close(timeout=session.END_OF_RUN_TIMEOUT)
        raise


def _run_tags(enabled: EnabledPlugin) -> dict[str, str]:
    tags = {
        "autolog.plugin": enabled.plugin.name,
        "autolog.version": __version__,
        "mlflow.autologging": enabled.plugin.name,
    }
    tags.update(dict(enabled.extra_tags))
    return tags


def _captured(call: Call, names: tuple[str, ...] | Any) -> dict[str, Any]:
    values = {name: call.get(name) for name in names}
    return redact_mapping({k: v for k, v in values.items() if _loggable(v)})


def _loggable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, tuple, list, dict))


# After the call ------------------------------------------------------------------------


def _finish(
    applied: Applied,
    plan: _Plan,
    *,
    result: Any = None,
    error: BaseException | None = None,
) -> None:
    patch = applied.patch
    name = applied.plugin_name
    call = plan.call
    if plan.sink is not None:
        try:
            # The call's last values travel while the after-hook saves models or reads
            # summaries, instead of waiting for the end of the run.
            plan.sink.send_pending()
        except Exception as exc:
            safety.report_failure(name, f"sending the last values of {patch.target}", exc)
    try:
        if call is not None:
            call.result = result
            if error is None and patch.after is not None:
                patch.after(call, result)
            elif error is not None and patch.on_error is not None:
                patch.on_error(call, error)
    except Exception as exc:
        safety.report_failure(
            name, f"{'after' if error is None else 'error'}-hook of {patch.target}", exc
        )
    finally:
        if plan.token is not None:
            session.leave(plan.token)
        _close_run(name, patch.target, plan, error)


def _close_run(name: str, target: str, plan: _Plan, error: BaseException | None) -> None:
    sink = plan.sink
    if sink is None:
        return
    ending = False
    try:
        # Bounded: past it, what is still pending goes to the spool for `autolog sync`,
        # so a dead tracking server never holds the user's program at the end of a run.
        if plan.owned:
            status = session.status_for(error)
            ending = True
            sink.end_run(status, timeout=session.END_OF_RUN_TIMEOUT)
        elif session.current_call() is None:
            # A run this call only joined (the user's, or the one an earlier fit made):
            # it stays open, but the sink opened for this call is let go, or every
            # evaluate() after a fit would leave one behind for the rest of the process.
            sink.close(timeout=session.END_OF_RUN_TIMEOUT)
    except Exception as exc:
        if plan.owned and not ending:
            # The run must still end, or it stays RUNNING in the store for good.
            with contextlib.suppress(Exception):
                status = "FINISHED" if error is None else "FAILED"
                sink.end_run(status, timeout=session.END_OF_RUN_TIMEOUT)
        safety.report_failure(name, f"ending the run of {target}", exc)
