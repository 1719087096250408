"""The user surface: `autolog` and `disable`.

Arguments are validated in full before anything changes, so a call that raises leaves the
previous configuration in place. Calling `autolog` again reconfigures the plugins it
selects; plugins it does not select keep their state.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from autolog import discovery, safety, session
from autolog.discovery import PluginInfo
from autolog.options import COMMON_OPTIONS
from autolog.plugin import Plugin, PluginOptions, check_declaration
from autolog.registry import EnabledPlugin, registry

__all__ = ["autolog", "available_plugins", "disable"]

# autolog()'s own keyword arguments, suggested back when one is misspelt.
_ARGUMENTS = (
    "frameworks",
    "plugins",
    "disable",
    "exclusive",
    "silent",
    "log_every_n_steps",
    "log_models",
    "extra_tags",
)


def autolog(
    frameworks: Iterable[str] | None = None,
    *,
    plugins: Iterable[type[Plugin]] | None = None,
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
        plugins: plugin classes to enable that are not installed as entry points, for
            trying or testing one (``plugins=[MyPlugin]``). Each is checked like an
            installed plugin (its declaration, its ``requires`` against installed
            metadata); its options go under its ``name`` and ``disable([name])`` turns it
            off. With ``frameworks=None``, only these plugins are enabled.
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
    prepared = _prepare(
        frameworks,
        plugins=plugins,
        disable=disable,
        exclusive=exclusive,
        silent=silent,
        log_every_n_steps=log_every_n_steps,
        log_models=log_models,
        extra_tags=extra_tags,
        plugin_options=plugin_options,
    )
    # Only now, with every argument checked: a call that raises changes nothing.
    safety.set_silent(silent)
    if disable:
        for name in prepared.selected:
            registry.disable(name)
        return []
    for message in prepared.not_enabled:
        safety.warn(message)
    for enabled in prepared.plan:
        registry.enable(enabled)
    if prepared.plan:
        try:
            log_models = any(e.options.log_models is not False for e in prepared.plan)
            session.get_backend().prepare(log_models=log_models)
        except Exception as exc:  # only a head start: the first run does the work anyway
            safety.report_failure("autolog", "warming up the first run", exc)
    return sorted(e.plugin.name for e in prepared.plan)


def check_arguments(arguments: Mapping[str, Any]) -> None:
    """Raise what `autolog` would raise for these keyword arguments, changing nothing.

    ``autolog run`` calls it before starting the user's command, so that a configuration
    error stops there (exit status 2) instead of in the command's first second.
    """
    arguments = dict(arguments)
    frameworks = arguments.pop("frameworks", None)
    flags = {name: arguments.pop(name) for name in _ARGUMENTS[1:] if name in arguments}
    _prepare(frameworks, **flags, plugin_options=arguments)


@dataclasses.dataclass
class _Prepared:
    selected: list[str]
    plan: list[EnabledPlugin]
    not_enabled: list[str]


def _prepare(
    frameworks: Iterable[str] | None,
    *,
    plugins: Iterable[type[Plugin]] | None = None,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
    log_every_n_steps: int | None = None,
    log_models: bool = True,
    extra_tags: Mapping[str, str] | None = None,
    plugin_options: Mapping[str, Any],
) -> _Prepared:
    """Check every argument and work out what `autolog` will do; change nothing."""
    names = _validate_frameworks(frameworks)
    classes = _validate_plugins(plugins)
    _validate_flags(
        disable=disable,
        exclusive=exclusive,
        silent=silent,
        log_every_n_steps=log_every_n_steps,
        log_models=log_models,
    )
    tags = _validate_tags(extra_tags)

    infos = discovery.discover(requested=names)
    for cls in classes:
        installed = infos.get(cls.name)
        if installed is not None and installed.plugin_class not in (None, cls):
            raise ValueError(
                f"plugins holds {_where(cls)}, named {cls.name!r} like the installed plugin "
                f"{installed.entry_point} (from {installed.distribution}); give it another name"
            )
        infos[cls.name] = discovery.describe(cls)
    given = [cls.name for cls in classes]
    if names is None and given:
        names = given
    elif names is not None:
        names = list(dict.fromkeys([*names, *given]))
    if names is not None:
        unknown = [name for name in names if name not in infos]
        if unknown:
            raise ValueError(unknown_frameworks_message(unknown, infos))
    for key, value in plugin_options.items():
        if key not in infos:
            raise TypeError(
                f"autolog() got an unexpected keyword argument {key!r}"
                f"{_did_you_mean(key, [*_ARGUMENTS, *infos])}; per-plugin options go "
                f"under a plugin name, one of {sorted(infos) or 'none'}"
            )
        if not isinstance(value, Mapping):
            raise TypeError(
                f"options for plugin {key!r} must be a mapping such as {{'log_models': False}}, "
                f"got {type(value).__name__}"
            )

    selected = list(names) if names is not None else sorted(infos)
    prepared = _Prepared(selected=selected, plan=[], not_enabled=[])
    if disable:
        return prepared
    for name in selected:
        info = infos[name]
        if info.plugin_class is None:
            if names is not None or info.load_error:
                prepared.not_enabled.append(f"plugin {name!r} is not enabled: {info.state}")
            continue
        # Options are checked even for plugins that end up unavailable: a typo is a typo.
        _check_option_names(name, info.plugin_class.option_names(), plugin_options.get(name))
        options = info.plugin_class.make_options(plugin_options.get(name))
        if not info.available:
            if names is not None:
                prepared.not_enabled.append(f"plugin {name!r} is not enabled: {info.state}")
            continue
        prepared.plan.append(
            EnabledPlugin(
                plugin=info.plugin_class(),
                options=_inherit(options, log_every_n_steps, log_models),
                exclusive=exclusive,
                extra_tags=tags,
            )
        )
    return prepared


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
        # "keras,sklearn": the form of `autolog run --frameworks` and AUTOLOG_FRAMEWORKS.
        frameworks = [part.strip() for part in frameworks.split(",") if part.strip()]
    try:
        names = list(frameworks)
    except TypeError:
        raise TypeError(
            "frameworks must be plugin names (a list, or one comma-separated string) or "
            f"None, got {type(frameworks).__name__}"
        ) from None
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"frameworks must hold plugin names (strings), got {bad!r}")
    return list(dict.fromkeys(names))


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _validate_plugins(plugins: Iterable[type[Plugin]] | None) -> list[type[Plugin]]:
    """The plugin classes given to ``plugins=``, each checked as a declared plugin."""
    if plugins is None:
        return []
    if isinstance(plugins, (type, str, Plugin)):
        shown = plugins.__name__ if isinstance(plugins, type) else repr(plugins)
        raise TypeError(
            f"plugins must be a list of Plugin classes, got {shown}; write plugins=[{shown}]"
        )
    try:
        items = list(plugins)
    except TypeError:
        raise TypeError(
            f"plugins must be a list of Plugin classes, got {type(plugins).__name__}"
        ) from None
    classes: list[type[Plugin]] = []
    for item in items:
        if isinstance(item, Plugin):
            raise TypeError(
                f"plugins holds an instance of {_where(type(item))}; pass the class itself"
            )
        if not (isinstance(item, type) and issubclass(item, Plugin)):
            raise TypeError(f"plugins holds {item!r}, which is not a subclass of autolog.Plugin")
        if item is Plugin or item.__dict__.get("_abstract", False):
            raise TypeError(f"plugins holds {_where(item)}, an abstract plugin class")
        check_declaration(item)  # it may have changed since its class statement ran
        twin = next((c for c in classes if c.name == item.name and c is not item), None)
        if twin is not None:
            raise ValueError(
                f"plugins holds two plugins named {item.name!r}: {_where(twin)} and {_where(item)}"
            )
        if item not in classes:
            classes.append(item)
    return classes


def _validate_flags(**flags: Any) -> None:
    for name in ("disable", "exclusive"):
        if not isinstance(flags[name], bool):
            raise TypeError(f"{name} must be True or False, got {flags[name]!r}")
    for name in ("silent", "log_models", "log_every_n_steps"):
        COMMON_OPTIONS[name].validate(flags[name])


def _validate_tags(extra_tags: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """Every tag checked as MLflow would check it, so none is refused later, run by run."""
    tags: tuple[tuple[str, str], ...] = COMMON_OPTIONS["extra_tags"].validate(extra_tags)
    return tags


def _check_option_names(plugin: str, valid: list[str], given: Mapping[str, Any] | None) -> None:
    unknown = sorted(set(given or ()) - set(valid))
    if not unknown:
        return
    listed = ", ".join(f"{name!r}{_did_you_mean(name, valid)}" for name in unknown)
    raise TypeError(
        f"unknown option{'s' if len(unknown) > 1 else ''} {listed} for plugin {plugin!r}; "
        f"valid options: {', '.join(valid)}"
    )


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest candidate, or nothing when none is near."""
    near = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def unknown_frameworks_message(unknown: Iterable[str], available: Iterable[str]) -> str:
    """What `autolog()` and ``autolog run`` say about plugin names nobody provides."""
    available = sorted(available)
    parts = [f"unknown framework {name!r}{_did_you_mean(name, available)}" for name in unknown]
    return f"{'; '.join(parts)}; available plugins: {', '.join(available) or 'none'}"


def available_plugins() -> dict[str, PluginInfo]:
    """What ``autolog plugins`` shows: every discovered plugin and its state."""
    return discovery.discover()
