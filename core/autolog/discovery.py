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

__all__ = ["ENTRY_POINT_GROUP", "PluginInfo", "check_requirements", "discover"]

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


def check_requirements(requires: Iterable[str | tuple[str, ...]]) -> tuple[str, ...]:
    """The unmet requirements, as readable sentences (empty: all met)."""
    problems: list[str] = []
    for item in requires:
        alternatives = (item,) if isinstance(item, str) else tuple(item)
        reasons = [_check_one(alt) for alt in alternatives]
        if all(reason is not None for reason in reasons):
            problems.append(" or ".join(r for r in reasons if r))
    return tuple(problems)


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
        return dataclasses.replace(base, load_error=f"{type(exc).__name__}: {exc}")
    if not (isinstance(loaded, type) and issubclass(loaded, Plugin)):
        return dataclasses.replace(
            base, load_error=f"{ep.value} is {loaded!r}, not a subclass of autolog.Plugin"
        )
    if loaded.name != ep.name:
        return dataclasses.replace(
            base,
            load_error=f"entry point {ep.name!r} loads a plugin named {loaded.name!r}; "
            "the two names must be the same",
        )
    try:
        unmet = check_requirements(loaded.requires)
    except Exception as exc:
        return dataclasses.replace(base, load_error=f"bad requires: {exc}")
    framework, version = _framework_version(loaded)
    return dataclasses.replace(
        base,
        plugin_class=loaded,
        unmet=unmet,
        framework=framework,
        framework_version=version,
        supported=_supported(loaded),
    )


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
