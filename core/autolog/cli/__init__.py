"""The ``autolog`` command (also ``python -m autolog``): the group and its options.

One module per command: `plugins <autolog.cli.plugins>`, `run <autolog.cli.run>`,
`sync <autolog.cli.sync>`. Each command has a ``short_help`` that fits the command list
of ``autolog --help`` on an 80-column terminal.
"""

from __future__ import annotations

import click

from autolog._version import __version__
from autolog.cli import plugins, run, sync  # the modules stay reachable by these names

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="autolog")
def main() -> None:
    """Autologging for MLflow, for every framework that has a plugin.

    \b
    autolog plugins                  what is installed, what would be logged
    autolog run -- python train.py   a script, autologged without changes
    autolog sync                     deliver what the tracking store missed
    """


main.add_command(plugins.plugins)
main.add_command(run.run)
main.add_command(sync.sync)
