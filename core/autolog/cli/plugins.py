"""``autolog plugins``: every discovered plugin and whether `autolog()` would enable it.

The table fits the terminal (rich measures it; ``COLUMNS`` is honoured): one row per
plugin with a short reason; ``--verbose`` gives every detail, one block per plugin, and
``--json`` the same rows for scripts.
"""

from __future__ import annotations

import json
import shutil

import click
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autolog.discovery import PluginInfo

__all__ = ["plugins"]

WOULD_BE_ENABLED = "would be enabled"
WIDE = 110  # columns from which the table also shows the supported range and distribution


def _framework(info: PluginInfo) -> str:
    if not info.framework:
        return "-"
    return f"{info.framework} {info.framework_version or '(not installed)'}"


def _framework_range(info: PluginInfo) -> str:
    """The versions of its framework a plugin supports (``>=2.15``); all of it: --verbose."""
    if info.plugin_class is None or not info.framework:
        return "-"
    wanted = canonicalize_name(info.framework)
    for item in info.plugin_class.requires:
        for requirement in (item,) if isinstance(item, str) else item:
            parsed = Requirement(requirement)
            if canonicalize_name(parsed.name) == wanted:
                return str(parsed.specifier) or "any"
    return "-"


def _state(info: PluginInfo, *, short: bool) -> str:
    if info.available:
        return WOULD_BE_ENABLED
    return info.short_state if short else info.state


def _print_details(infos: list[PluginInfo]) -> None:
    """One block per plugin, every field whole, wrapped to the terminal's width."""
    width = shutil.get_terminal_size().columns
    for info in infos:
        click.echo(info.name)
        details = {
            "state": _state(info, short=False),
            "framework": _framework(info),
            "supports": info.supported or "-",
            "distribution": info.distribution or "?",
            "entry point": info.entry_point,
        }
        for label, value in details.items():
            head = f"  {label + ':':<14}"
            click.echo(
                click.wrap_text(
                    value,
                    width=max(width, 40),
                    initial_indent=head,
                    subsequent_indent=" " * len(head),
                )
            )


@click.command(short_help="List plugins and whether autolog() would enable them.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON, for scripts.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Every detail: distribution, entry point, full reasons."
)
def plugins(as_json: bool, verbose: bool) -> None:
    """List the plugins found in the 'autolog.plugins' entry-point group, with the
    framework version installed and whether autolog() would enable each one, or why not.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from autolog.discovery import discover

    infos = sorted(discover().values(), key=lambda i: i.name)
    if as_json:
        rows = [
            {
                "name": info.name,
                "distribution": info.distribution or "?",
                "framework": info.framework or "",
                "installed": info.framework_version or "-",
                "supported": info.supported or "-",
                "state": _state(info, short=False),
                "reason": _state(info, short=True),
            }
            for info in infos
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    console = Console(highlight=False)  # the terminal's width, or COLUMNS
    if not infos:
        console.print("No plugins found in the 'autolog.plugins' entry-point group.")
        return
    if verbose:
        _print_details(infos)
        return
    console.print("autolog plugins")
    # On a wide terminal there is room for the supported range and the distribution;
    # at 80 columns they would squeeze the reason into a narrow column (--verbose has them).
    wide = console.width >= WIDE
    table = Table()
    table.add_column("plugin", no_wrap=True)
    table.add_column("framework", overflow="fold")
    table.add_column("version", overflow="fold")
    if wide:
        table.add_column("supports", overflow="fold")
        table.add_column("distribution", overflow="fold")
    table.add_column("state", overflow="fold")
    for info in infos:
        cells = [info.name, info.framework or "-", info.framework_version or "-"]
        if wide:
            cells += [_framework_range(info), info.distribution or "?"]
        cells.append(_state(info, short=True))
        table.add_row(*(escape(cell) for cell in cells))
    console.print(table)
    console.print("Details: autolog plugins --verbose")
