"""``autolog run``: a command's Python process autologged, without changing its code.

The shared options (``--log-every-n-steps``, ``--log-models``, ``--silent``, ``--tag``)
are built from their one definition in `autolog.options`. The options are checked here, before the command starts, as `autolog()` would check them
in it: a typo in a framework or option name stops with exit status 2 instead of letting
a whole training run unlogged. They reach the command's interpreter through the
environment (``AUTOLOG_FRAMEWORKS``, ``AUTOLOG_OPTIONS``), read by the ``sitecustomize``
module in ``autolog/runner/``.

Options go before ``--`` (or before the command, whose own options are never read as
ours); an unknown option there is refused the way click refuses one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from autolog import env
from autolog.cli.common import common_option

__all__ = ["run"]


@click.command(
    short_help="Run a Python command with autologging, unchanged.",
    # Parsing stops at the command: its own options (`python train.py --epochs 3`) are its.
    context_settings={"allow_interspersed_args": False},
)
@click.option(
    "--frameworks",
    metavar="NAMES",
    envvar=env.AUTOLOG_FRAMEWORKS,
    default="",
    help="Plugins to enable, comma-separated (default: every available one).",
)
@common_option("log_every_n_steps")
@common_option("log_models")
@click.option("--exclusive", is_flag=True, help="Never log into runs the script starts itself.")
@common_option("silent")
@common_option("extra_tags")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    frameworks: str,
    log_every_n_steps: int | None,
    log_models: bool | None,
    exclusive: bool,
    silent: bool,
    extra_tags: tuple[str, ...],
    command: tuple[str, ...],
) -> None:
    """Run COMMAND with autologging enabled in its Python process; the script's code
    is not changed.

    \b
    Put autolog's options first, then -- and the command:
        autolog run --frameworks keras -- python train.py --epochs 3

    AUTOLOG_OPTIONS may hold more autolog() arguments as a JSON object, e.g.
    '{"keras": {"checkpoint": "best"}}'; the options given here win over it. A
    configuration error (an unknown framework or option) stops before the command
    starts, with exit status 2. Otherwise the command's exit status is passed on.
    """
    options = _options_from_environment()
    given: dict[str, Any] = {
        "log_every_n_steps": log_every_n_steps,
        "log_models": log_models,
        "exclusive": exclusive or None,
        "silent": silent or None,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    if extra_tags:
        options["extra_tags"] = {**(options.get("extra_tags") or {}), **_parse_tags(extra_tags)}
    names = [part.strip() for part in frameworks.split(",") if part.strip()]
    _check(names, options)

    child_env = dict(os.environ)
    runner_dir = str(Path(__file__).parent.parent / "runner")
    previous = child_env.get("PYTHONPATH", "")
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (runner_dir, previous) if p)
    child_env[env.AUTOLOG_FRAMEWORKS] = ",".join(names)
    child_env[env.AUTOLOG_OPTIONS] = json.dumps(options)
    child_env["AUTOLOG_RUNNER_DIR"] = runner_dir
    child_env["AUTOLOG_RUNNER_PREVIOUS_PYTHONPATH"] = previous
    returncode = _run_passing_signals(list(command), child_env)
    sys.exit(returncode if returncode >= 0 else 128 - returncode)


def _options_from_environment() -> dict[str, Any]:
    raw = os.environ.get(env.AUTOLOG_OPTIONS, "").strip()
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except ValueError as exc:
        raise click.UsageError(f"{env.AUTOLOG_OPTIONS} is not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise click.UsageError(
            f"{env.AUTOLOG_OPTIONS} must be a JSON object of autolog() arguments, "
            f"got {type(options).__name__}"
        )
    if "frameworks" in options:
        raise click.UsageError(
            f"{env.AUTOLOG_OPTIONS} cannot hold 'frameworks': use --frameworks or "
            f"{env.AUTOLOG_FRAMEWORKS}"
        )
    return {k: v for k, v in options.items() if v is not None}


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{tag!r} is not KEY=VALUE", param_hint="'--tag'")
        parsed[key] = value
    return parsed


def _check(names: list[str], options: dict[str, Any]) -> None:
    """What autolog() would refuse in the command, refused here (exit status 2)."""
    from autolog import api
    from autolog.discovery import discover

    if names:
        infos = discover(requested=names)
        unknown = [name for name in names if name not in infos]
        if unknown:
            raise click.BadParameter(
                api.unknown_frameworks_message(unknown, infos), param_hint="'--frameworks'"
            )
    try:
        api.check_arguments({"frameworks": names or None, **options})
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None


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
