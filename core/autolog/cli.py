"""The ``autolog`` command (also ``python -m autolog``): plugins, run, sync."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from autolog import __version__, env

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="autolog")
def main() -> None:
    """Autologging for MLflow, for every framework that has a plugin."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plugins(as_json: bool) -> None:
    """List discovered plugins and whether autolog() would enable them."""
    from autolog.discovery import discover

    infos = discover()
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution or "?",
            "framework": info.framework or "",
            "installed": info.framework_version or "-",
            "supported": info.supported or "-",
            "state": "would be enabled" if info.available else info.state,
        }
        for info in sorted(infos.values(), key=lambda i: i.name)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="autolog plugins", title_justify="left")
    for column in ("plugin", "distribution", "framework", "installed", "supported", "state"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    console = Console(width=max(Console().width, 120))
    if rows:
        console.print(table)
    else:
        console.print("No plugins found in the 'autolog.plugins' entry-point group.")


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--frameworks", default="", help="Comma-separated plugin names (default: all).")
@click.option("--log-every-n-steps", type=click.IntRange(min=1), default=None)
@click.option("--log-models/--no-log-models", default=True)
@click.option("--exclusive", is_flag=True, help="Never log into runs the script starts.")
@click.option("--silent", is_flag=True, help="No warnings from autolog.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Extra run tag.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    frameworks: str,
    log_every_n_steps: int | None,
    log_models: bool,
    exclusive: bool,
    silent: bool,
    tags: tuple[str, ...],
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (e.g. ``-- python train.py``) with autologging, unmodified."""
    extra_tags = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep:
            raise click.BadParameter(f"{tag!r} is not KEY=VALUE", param_hint="--tag")
        extra_tags[key] = value
    options = {
        "log_every_n_steps": log_every_n_steps,
        "log_models": log_models,
        "exclusive": exclusive,
        "silent": silent,
        "extra_tags": extra_tags or None,
    }
    child_env = dict(os.environ)
    runner_dir = str(Path(__file__).parent / "runner")
    previous = child_env.get("PYTHONPATH", "")
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (runner_dir, previous) if p)
    child_env[env.AUTOLOG_FRAMEWORKS] = frameworks
    child_env[env.AUTOLOG_OPTIONS] = json.dumps(options)
    child_env["AUTOLOG_RUNNER_DIR"] = runner_dir
    child_env["AUTOLOG_RUNNER_PREVIOUS_PYTHONPATH"] = previous
    returncode = _run_passing_signals(list(command), child_env)
    sys.exit(returncode if returncode >= 0 else 128 - returncode)


def _run_passing_signals(command: list[str], child_env: dict[str, str]) -> int:
    """Run ``command`` to its end; what would stop us goes to it, so it ends its run itself.

    Ctrl-C reaches the child anyway (one process group): we let it pass rather than kill
    the child, whose run then ends KILLED with its data flushed, and whose exit status
    we pass on. A SIGTERM sent to us alone (a scheduler, ``kill``) is handed on to it.
    The handlers are in place before the child starts; being Python functions (not
    ``SIG_IGN``), they are reset to the default in the child when it execs.
    """
    child: subprocess.Popen[bytes] | None = None
    early: list[int] = []

    def let_pass(signum: int, frame: object) -> None:
        pass

    def forward(signum: int, frame: object) -> None:
        if child is None:
            early.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, let_pass),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
    }
    try:
        try:
            child = subprocess.Popen(command, env=child_env)
        except OSError as exc:  # missing, not executable, not a program...
            raise click.ClickException(f"cannot run {command[0]!r}: {exc.strerror or exc}") from exc
        for signum in early:
            child.send_signal(signum)
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@main.command()
@click.argument("spool", required=False, type=click.Path(path_type=Path))
@click.option("--no-progress", is_flag=True, help="Do not show a progress bar.")
def sync(spool: Path | None, no_progress: bool) -> None:
    """Deliver data that could not reach the tracking store (default: the spool dir)."""
    from autolog.batching.sync import sync_spool

    report = sync_spool(spool, progress=not no_progress)
    click.echo(str(report))
    if getattr(report, "failed", 0):
        sys.exit(1)
