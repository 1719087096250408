"""The records the registry keeps and the interception layer reads.

`EnabledPlugin` is a plugin as enabled (instance, options, run settings); `Applied` is one
patch as applied on one owner object. They live here, apart from both, so that the
dependency runs one way: `autolog.registry` imports `autolog.interception`, and both
import this module; interception never imports the registry.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from autolog.plugin import Patch, Plugin, PluginOptions

__all__ = ["Applied", "EnabledLookup", "EnabledPlugin"]


@dataclasses.dataclass(frozen=True)
class EnabledPlugin:
    """A plugin as enabled: its instance and effective options."""

    plugin: Plugin
    options: PluginOptions
    exclusive: bool = False
    extra_tags: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass
class Applied:
    """One patch as applied on one owner object."""

    plugin_name: str
    patch: Patch
    owner: Any
    attr: str
    original: Any
    replacement: Any
    own_attribute: bool
    signature: inspect.Signature
    is_async: bool
    active: bool = True


EnabledLookup = Callable[[str], "EnabledPlugin | None"]
"""How a wrapper finds, at call time, whether (and how) its plugin is enabled."""
