"""``autolog sync``: deliver what the tracking store could not take when it was logged.

``--dry-run`` lists each spool file's run, store and pending values and artifacts without
sending anything. A real sync shows a progress bar at once (values and artifacts), then
says what it delivered and to which tracking store(s). A SPOOL path that does not exist is
a usage error (exit status 2); files that could not be delivered give exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from autolog.batching.sync import PendingFile, SyncReport

__all__ = ["sync"]


@click.command(short_help="Deliver spooled data to the tracking store.")
@click.argument(
    "spool", required=False, type=click.Path(exists=True, path_type=Path), metavar="[SPOOL]"
)
@click.option(
    "--tracking-uri",
    metavar="URI",
    help="Send everything to this store instead of the one each file was written for.",
)
@click.option("--dry-run", is_flag=True, help="List what would be delivered; send nothing.")
@click.option("--no-progress", is_flag=True, help="Do not show a progress bar.")
def sync(spool: Path | None, tracking_uri: str | None, dry_run: bool, no_progress: bool) -> None:
    """Deliver the data that could not reach the tracking store when it was logged.

    SPOOL is a spool directory or one spool file (default: AUTOLOG_SPOOL_DIR, or the
    user cache directory). Delivered files are removed; a file that could not be
    delivered is kept for the next sync, and the exit status is 1.
    """
    from autolog import env
    from autolog.batching.sync import pending_files, sync_spool

    target = spool if spool is not None else env.spool_dir()
    if dry_run:
        _list(pending_files(target, tracking_uri=tracking_uri), target)
        return
    if no_progress or not sys.stdout.isatty():  # rich draws the bar on stdout
        report = sync_spool(target, progress=False, tracking_uri=tracking_uri)
    else:
        report = _sync_with_progress(target, tracking_uri)
    click.echo(str(report))
    if report.stores:
        click.echo(f"Tracking store(s) written to: {', '.join(report.stores)}")
    if report.failed:
        sys.exit(1)


def _describe_run(file: PendingFile) -> str:
    if file.run_id:
        return file.run_id
    name = f"{file.run_name!r}" if file.run_name else "a new run"
    where = f" in experiment {file.experiment}" if file.experiment else ""
    return f"{name}{where} (created when delivered)"


def _list(files: list[PendingFile], target: Path) -> None:
    if not files:
        click.echo(f"Nothing to sync in {target}.")
        return
    stores: list[str] = []
    for file in files:
        click.echo(str(file.path))
        click.echo(f"  run:      {_describe_run(file)}")
        click.echo(f"  store:    {file.tracking_uri or '(none named: use --tracking-uri)'}")
        pending = f"{file.values} value(s), {file.artifacts} artifact(s)"
        if file.end_status:
            pending += f", run end ({file.end_status})"
        click.echo(f"  pending:  {pending}")
        for problem in file.problems:
            click.echo(f"  skipped:  {problem}")
        if file.tracking_uri and file.tracking_uri not in stores:
            stores.append(file.tracking_uri)
    values = sum(f.values for f in files)
    artifacts = sum(f.artifacts for f in files)
    click.echo(
        f"{len(files)} spool file(s): {values} value(s) and {artifacts} artifact(s) would be "
        f"delivered to {', '.join(stores) or 'no store'}. Nothing was sent (--dry-run)."
    )


def _sync_with_progress(target: Path, tracking_uri: str | None) -> SyncReport:
    """`sync_spool` under a progress bar that is on screen before the files are read."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from autolog.batching.sync import pending_files, sync_spool

    with Progress(
        TextColumn("[bold]autolog sync"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        transient=False,
    ) as bar:
        task = bar.add_task("reading the spool…", total=None)
        files = pending_files(target, tracking_uri=tracking_uri)
        total = sum(f.values + f.artifacts for f in files)
        bar.update(task, total=total, description="values and artifacts")
        return sync_spool(
            target,
            progress=False,
            tracking_uri=tracking_uri,
            on_progress=lambda n: bar.advance(task, n),
        )
