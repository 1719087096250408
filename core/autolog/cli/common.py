"""Command-line options built from `autolog.options`, the one definition of the shared
options: ``--log-every-n-steps``, ``--log-models/--no-log-models``, ``--silent``, ``--tag``.

Each click option carries the name, help, default and range the definition gives, so
``autolog run`` refuses what ``autolog()`` would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from autolog.options import COMMON_OPTIONS

__all__ = ["common_option"]

F = TypeVar("F", bound=Callable[..., Any])


def common_option(name: str) -> Callable[[F], F]:
    """The click option for the shared option ``name`` (a key of `COMMON_OPTIONS`).

    Every option defaults to ``None`` on the command line ("not given"), so what
    ``AUTOLOG_OPTIONS`` says stays in force unless the option is given.
    """
    option = COMMON_OPTIONS[name]
    flag = f"--{option.cli_name}"
    decorator: Callable[[F], F]
    if option.cli == "int":
        decorator = click.option(
            flag,
            option.name,
            metavar=option.metavar,
            type=click.IntRange(min=option.minimum),
            default=None,
            help=option.help,
        )
    elif option.cli == "switch":
        decorator = click.option(
            f"{flag}/--no-{option.cli_name}", option.name, default=None, help=option.help
        )
    elif option.cli == "flag":
        decorator = click.option(flag, option.name, is_flag=True, help=option.help)
    elif option.cli == "pairs":
        decorator = click.option(
            flag, option.name, multiple=True, metavar=option.metavar, help=option.help
        )
    else:  # a definition this module does not know how to show: a bug, found at import
        raise ValueError(f"option {name!r} has an unknown command-line kind {option.cli!r}")
    return decorator
