"""The user surface: `autolog` and `disable`.

Arguments are validated in full before anything changes, so a call that raises leaves the
previous configuration in place. Calling `autolog` again reconfigures the plugins it
selects; plugins it does not select keep their state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from autolog import discovery, safety, session
from autolog.discovery import PluginInfo
from autolog.plugin import PluginOptions
from autolog.registry import EnabledPlugin, registry

__all__ = ["autolog", "available_plugins", "disable"]


def autolog(
    frameworks: Iterable[str] | None = None,
    *,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
    log_every_n_steps: int | None = None,
    log_models: bool = True,
    extra_tags: Mapping[str, str] | None = None,
    **plugin_options: Mapping[str, Any],
) -> list[str]:
    """Enable autologging for every installed framework, or for those named.

    Args:
        frameworks: plugin names (``["keras"]``); ``None`` means every discovered plugin
            whose framework is installed. An unknown name raises ``ValueError``.
        disable: turn the selected plugins off and restore every patched object.
        exclusive: never log into a run the user started; such calls are not logged.
        silent: no warnings or messages from autolog.
        log_every_n_steps: also log per-step metrics every N steps (``None``: per epoch).
        log_models: log the trained model.
        extra_tags: tags added to every run autolog logs into.
        **plugin_options: per-plugin options under the plugin's name, e.g.
            ``keras={"checkpoint": "best"}``. An unknown option raises ``TypeError``.

    Returns:
        The names of the plugins now enabled by this call, sorted.
    """
    names = _validate_frameworks(frameworks)
    _validate_flags(
        disable=disable,
        exclusive=exclusive,
        silent=silent,
        log_every_n_steps=log_every_n_steps,
        log_models=log_models,
    )
    tags = _validate_tags(extra_tags)

    infos = discovery.discover(requested=names)
    if names is not None:
        unknown = [name for name in names if name not in infos]
        if unknown:
            raise ValueError(
                f"unknown framework(s) {unknown}; available plugins: {sorted(infos) or 'none'}"
            )
    for key, value in plugin_options.items():
        if key not in infos:
            raise TypeError(
                f"autolog() got an unexpected keyword argument {key!r}; per-plugin options go "
                f"under a plugin name, one of {sorted(infos) or 'none'}"
            )
        if not isinstance(value, Mapping):
            raise TypeError(
                f"options for plugin {key!r} must be a mapping such as {{'log_models': False}}, "
                f"got {type(value).__name__}"
            )

    selected = list(names) if names is not None else sorted(infos)
    if disable:
        safety.set_silent(silent)
        for name in selected:
            registry.disable(name)
        return []

    plan: list[EnabledPlugin] = []
    not_enabled: list[str] = []
    for name in selected:
        info = infos[name]
        if info.plugin_class is None:
            if names is not None or info.load_error:
                not_enabled.append(f"autolog plugin {name!r} is not enabled: {info.state}")
            continue
        # Options are checked even for plugins that end up unavailable: a typo is a typo.
        options = info.plugin_class.make_options(plugin_options.get(name))
        if not info.available:
            if names is not None:
                not_enabled.append(f"autolog plugin {name!r} is not enabled: {info.state}")
            continue
        plan.append(
            EnabledPlugin(
                plugin=info.plugin_class(),
                options=_inherit(options, log_every_n_steps, log_models),
                exclusive=exclusive,
                extra_tags=tags,
            )
        )
    # Only now, with every argument checked: a call that raises changes nothing.
    safety.set_silent(silent)
    for message in not_enabled:
        safety.warn(message)
    for enabled in plan:
        registry.enable(enabled)
    if plan:
        try:
            log_models = any(e.options.log_models is not False for e in plan)
            session.get_backend().prepare(log_models=log_models)
        except Exception as exc:  # only a head start: the first run does the work anyway
            safety.report_failure("autolog", "warming up the first run", exc)
    return sorted(e.plugin.name for e in plan)


def disable(frameworks: Iterable[str] | None = None) -> None:
    """Turn autologging off (for the named plugins, or all) and restore patched objects."""
    names = _validate_frameworks(frameworks)
    for name in names if names is not None else registry.enabled_names():
        registry.disable(name)


def _inherit(
    options: PluginOptions, log_every_n_steps: int | None, log_models: bool
) -> PluginOptions:
    changes: dict[str, Any] = {}
    if options.log_every_n_steps is None and log_every_n_steps is not None:
        changes["log_every_n_steps"] = log_every_n_steps
    if options.log_models is None:
        changes["log_models"] = log_models
    return dataclasses.replace(options, **changes) if changes else options


def _validate_frameworks(frameworks: Iterable[str] | None) -> list[str] | None:
    if frameworks is None:
        return None
    if isinstance(frameworks, str):
        frameworks = [frameworks]
    try:
        names = list(frameworks)
    except TypeError:
        raise TypeError(
            f"frameworks must be a list of plugin names or None, got {type(frameworks).__name__}"
        ) from None
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"frameworks must hold plugin names (strings), got {bad!r}")
    return list(dict.fromkeys(names))


def _validate_flags(**flags: Any) -> None:
    for name in ("disable", "exclusive", "silent", "log_models"):
        if not isinstance(flags[name], bool):
            raise TypeError(f"{name} must be True or False, got {flags[name]!r}")
    n = flags["log_every_n_steps"]
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise TypeError(f"log_every_n_steps must be a positive int or None, got {n!r}")


def _validate_tags(extra_tags: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if extra_tags is None:
        return ()
    if not isinstance(extra_tags, Mapping):
        raise TypeError(f"extra_tags must be a mapping of str to str, got {extra_tags!r}")
    return tuple((str(k), str(v)) for k, v in extra_tags.items())


def available_plugins() -> dict[str, PluginInfo]:
    """What ``autolog plugins`` shows: every discovered plugin and its state."""
    return discovery.discover()
