"""Plugin discovery: the ``autolog.plugins`` entry-point group, and whether each plugin can run.

Every plugin, first-party or not, is found the same way: one entry point in the group,
named after the plugin. A plugin's ``requires`` is checked against installed distribution
metadata, so the framework is never imported to find out whether it is there. A plugin that
fails to load is reported with its name and the reason; the others are unaffected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import importlib_metadata
from packaging.requirements import Requirement

from autolog import env, safety
from autolog.plugin import Plugin

__all__ = ["ENTRY_POINT_GROUP", "PluginInfo", "check_requirements", "describe", "discover"]

ENTRY_POINT_GROUP = "autolog.plugins"
SHIPPED_DISTRIBUTION = "autolog-core"


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """What discovery found out about one entry point."""

    name: str
    entry_point: str
    distribution: str | None
    plugin_class: type[Plugin] | None = None
    load_error: str | None = None
    not_loaded: str | None = None
    unmet: tuple[str, ...] = ()
    framework: str | None = None
    framework_version: str | None = None
    supported: str = ""
    disabled_by_env: bool = False
    # The short forms shown by ``autolog plugins`` (one per entry of ``unmet``; the type
    # and first line of ``load_error``); ``state`` has the whole sentences.
    unmet_short: tuple[str, ...] = ()
    load_error_short: str | None = None

    @property
    def available(self) -> bool:
        """Loaded, its requirements met, and not disabled."""
        return self.plugin_class is not None and not self.unmet and not self.disabled_by_env

    @property
    def state(self) -> str:
        """``enabled``-able or the reason why not, in a few words."""
        if self.not_loaded:
            return f"not loaded: {self.not_loaded}"
        if self.load_error:
            return f"failed to load: {self.load_error}"
        if self.disabled_by_env:
            return f"disabled by {env.AUTOLOG_DISABLED_PLUGINS}"
        if self.unmet:
            return "; ".join(self.unmet)
        return "available"

    @property
    def short_state(self) -> str:
        """`state` in one short phrase, e.g. ``tensorflow-estimator not installed``."""
        if self.not_loaded:
            return f"not loaded ({env.AUTOLOG_DISABLE_PLUGIN_AUTOLOAD})"
        if self.load_error:
            return f"failed to load ({self.load_error_short or 'see --verbose'})"
        if self.disabled_by_env:
            return f"disabled by {env.AUTOLOG_DISABLED_PLUGINS}"
        if self.unmet:
            short = self.unmet_short or self.unmet
            more = f" (+{len(short) - 1} more)" if len(short) > 1 else ""
            return f"{short[0]}{more}"
        return "available"


def _distribution_version(name: str) -> str | None:
    try:
        return str(importlib_metadata.version(name))
    except importlib_metadata.PackageNotFoundError:
        return None


def _check_one(requirement: str) -> str | None:
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate():
        return None
    version = _distribution_version(req.name)
    if version is None:
        return f"{req.name} is not installed"
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return f"{req.name} {version} is installed, the plugin supports {req.specifier}"
    return None


def _short_one(requirement: str) -> tuple[bool, str]:
    """(installed?, short reason) for a requirement `_check_one` found unmet."""
    req = Requirement(requirement)
    version = _distribution_version(req.name)
    if version is None:
        return False, f"{req.name} not installed"
    failing = [str(s) for s in req.specifier if not s.contains(version, prereleases=True)]
    return True, f"needs {req.name} {','.join(failing)} ({version} installed)"


def _unmet(item: str | tuple[str, ...]) -> tuple[str, str] | None:
    """(sentence, short phrase) for one ``requires`` entry, or None when it is met.

    Of several alternatives, the ones installed are what the user can act on (upgrade or
    downgrade); when none is installed, the first names the one to install.
    """
    alternatives = (item,) if isinstance(item, str) else tuple(item)
    reasons = [_check_one(alt) for alt in alternatives]
    if any(reason is None for reason in reasons):
        return None
    shorts = [_short_one(alt) for alt in alternatives]
    installed = [i for i, (present, _) in enumerate(shorts) if present]
    if installed:
        long = " or ".join(str(reasons[i]) for i in installed)
        return long, shorts[installed[0]][1]
    if len(alternatives) == 1:
        return str(reasons[0]), shorts[0][1]
    names = ", ".join(Requirement(alt).name for alt in alternatives)
    return f"none of {names} is installed", shorts[0][1]


def check_requirements(requires: Iterable[str | tuple[str, ...]]) -> tuple[str, ...]:
    """The unmet requirements, as readable sentences (empty: all met)."""
    return tuple(found[0] for item in requires if (found := _unmet(item)) is not None)


def _check_requirements_short(requires: Iterable[str | tuple[str, ...]]) -> tuple[str, ...]:
    shorts = [found[1] for item in requires if (found := _unmet(item)) is not None]
    # A version that does not fit says more than a missing package (which may come with it).
    return tuple(sorted(shorts, key=lambda short: not short.startswith("needs ")))


def _framework_version(plugin_class: type[Plugin]) -> tuple[str | None, str | None]:
    framework = plugin_class.framework
    if framework is None:
        return None, None
    return framework, _distribution_version(framework)


def _supported(plugin_class: type[Plugin]) -> str:
    parts = []
    for item in plugin_class.requires:
        parts.append(item if isinstance(item, str) else " | ".join(item))
    return ", ".join(parts)


def discover(requested: Iterable[str] | None = None) -> dict[str, PluginInfo]:
    """Every plugin in the entry-point group, loaded (or not) and checked.

    ``requested`` names are loaded even when ``AUTOLOG_DISABLE_PLUGIN_AUTOLOAD`` is set.
    """
    wanted = set(requested or ())
    autoload = not env.plugin_autoload_disabled()
    disabled = env.disabled_plugins()
    found: dict[str, PluginInfo] = {}
    for ep, dist in _entry_points():
        if ep.name in found:
            continue  # first on sys.path wins, as for any import
        base = PluginInfo(
            name=ep.name,
            entry_point=ep.value,
            distribution=dist,
            disabled_by_env="*" in disabled or ep.name in disabled,
        )
        shipped = dist is not None and _canonical(dist) == SHIPPED_DISTRIBUTION
        if not (autoload or shipped or ep.name in wanted):
            found[ep.name] = dataclasses.replace(
                base,
                not_loaded=f"{env.AUTOLOG_DISABLE_PLUGIN_AUTOLOAD} is set and it was not requested",
            )
            continue
        found[ep.name] = _load(ep, base)
    return found


def _entry_points() -> list[tuple[importlib_metadata.EntryPoint, str | None]]:
    """(entry point, distribution name) for the group, one distribution at a time.

    One installed package with broken metadata (no Name, bad encoding, an unparsable
    entry_points.txt) is reported by its location and skipped; it never stops discovery.
    """
    found: list[tuple[importlib_metadata.EntryPoint, str | None]] = []
    seen: set[str] = set()
    for dist in importlib_metadata.distributions():
        try:
            eps = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
            if not eps:
                continue
            name = dist.metadata["Name"]
        except Exception as exc:
            where = str(getattr(dist, "_path", dist))
            safety.warn(
                f"autolog skipped the installed distribution at {where}: its metadata is "
                f"broken ({type(exc).__name__}: {exc})",
                once_key=("broken-dist", where),
            )
            continue
        canonical = _canonical(name) if name else ""
        if canonical in seen:
            continue  # the same distribution further down sys.path is shadowed
        seen.add(canonical)
        found.extend((ep, name) for ep in eps)
    return found


def _load(ep: importlib_metadata.EntryPoint, base: PluginInfo) -> PluginInfo:
    try:
        loaded = ep.load()
    except Exception as exc:  # a broken plugin must not take the others down
        return dataclasses.replace(
            base,
            load_error=f"{type(exc).__name__}: {exc}",
            load_error_short=type(exc).__name__,
        )
    if not (isinstance(loaded, type) and issubclass(loaded, Plugin)):
        return dataclasses.replace(
            base,
            load_error=f"{ep.value} is {loaded!r}, not a subclass of autolog.Plugin",
            load_error_short="not an autolog.Plugin",
        )
    if loaded.name != ep.name:
        return dataclasses.replace(
            base,
            load_error=f"entry point {ep.name!r} loads a plugin named {loaded.name!r}; "
            "the two names must be the same",
            load_error_short=f"it is named {loaded.name!r}",
        )
    return _checked(base, loaded)


def describe(plugin_class: type[Plugin]) -> PluginInfo:
    """A plugin class that is not installed (``autolog(plugins=[...])``), checked as
    `discover` checks an installed one: its ``requires`` against installed metadata, and
    ``AUTOLOG_DISABLED_PLUGINS``. Its `PluginInfo.entry_point` is ``module:qualname``."""
    disabled = env.disabled_plugins()
    base = PluginInfo(
        name=plugin_class.name,
        entry_point=f"{plugin_class.__module__}:{plugin_class.__qualname__}",
        distribution=None,
        disabled_by_env="*" in disabled or plugin_class.name in disabled,
    )
    return _checked(base, plugin_class)


def _checked(base: PluginInfo, loaded: type[Plugin]) -> PluginInfo:
    try:
        unmet = check_requirements(loaded.requires)
        unmet_short = _check_requirements_short(loaded.requires)
    except Exception as exc:
        return dataclasses.replace(
            base, load_error=f"bad requires: {exc}", load_error_short="bad requires"
        )
    framework, version = _framework_version(loaded)
    return dataclasses.replace(
        base,
        plugin_class=loaded,
        unmet=unmet,
        unmet_short=unmet_short,
        framework=framework,
        framework_version=version,
        supported=_supported(loaded),
    )


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
