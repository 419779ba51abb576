"""`ledgerflow replay MODULE HISTORY...`: replay recorded histories against MODULE's workflows
before deploying it. One line per history (OK, or where code and history part), a summary,
exit code 1 when any history fails.

Histories come from files (`ledgerflow wf history ID -o json`, the HTTP history endpoint's
body) and directories of them, or, with `--from-db`, straight from the configured database,
one instance at a time (filters as in `wf list`), each verified first when it is signed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click

from ledgerflow import access, errors
from ledgerflow.cli_help import examples
from ledgerflow.config import Settings
from ledgerflow.loader import load_runtime
from ledgerflow.management import WorkflowManager
from ledgerflow.testing import histories
from ledgerflow.testing.replayer import Replayer
from ledgerflow.workflow_cli import CliError, parse_since
from persistence.errors import StoreUnavailable

#: Instances listed per database round trip with --from-db.
PAGE_SIZE = 500


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0

    def add(self, line: str, ok: bool) -> None:
        click.echo(line)
        if ok:
            self.ok += 1
        else:
            self.failed += 1


@click.command("replay", epilog=examples(
    "ledgerflow replay myapp.workflows histories/",
    "ledgerflow replay myapp.workflows order-1.json order-2.json",
    "ledgerflow replay myapp.workflows --from-db -s RUNNING"))
@click.argument("module")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path), metavar="HISTORY...")
@click.option("--from-db", is_flag=True, help="Replay the instances in the configured database.")
@click.option("-a", "--app-id", default=None, metavar="APP", help="With --from-db: this app's instances.")
@click.option("-w", "--filter-name", default=None, help="With --from-db: only workflows with this name.")
@click.option("-s", "--filter-status", "statuses", multiple=True, metavar="STATUS",
              help="With --from-db: only this status (repeat, or comma-separate).")
@click.option("-m", "--filter-max-age", default=None, metavar="AGE",
              help="With --from-db: only workflows created within AGE (1.5h, 720h) or since a time.")
def replay_command(module: str, paths: tuple[Path, ...], from_db: bool, app_id: str | None,
                   filter_name: str | None, statuses: tuple[str, ...], filter_max_age: str | None) -> None:
    """Replay recorded histories against MODULE's workflows; exit 1 if any no longer replays."""
    if bool(paths) == from_db:
        raise CliError("name history files or directories, or pass --from-db (not both)")
    replayer = Replayer(load_runtime(module))
    tally = Tally()
    if from_db:
        wanted = [s for value in statuses for s in value.split(",") if s.strip()] or None
        after = parse_since(filter_max_age, "-m/--filter-max-age") if filter_max_age else None
        _replay_database(replayer, tally, app_id, filter_name, wanted, after)
    else:
        for path in histories.files(paths):
            try:
                result = replayer.replay(histories.load_file(path))
            except histories.HistoryFormatError as exc:
                tally.add(f"FAIL  {path}: {exc}", ok=False)
                continue
            tally.add(str(result), result.ok)
    total = tally.ok + tally.failed
    click.echo(f"{total} {'history' if total == 1 else 'histories'} replayed: {tally.ok} OK, {tally.failed} failed")
    if tally.failed:
        raise SystemExit(1)


def _replay_database(replayer: Replayer, tally: Tally, app_id: str | None, name: str | None,
                     statuses: list[str] | None, after: datetime | None) -> None:
    settings = Settings.from_env(app_id=app_id)
    manager = WorkflowManager(settings)
    try:
        for instance_id in _instance_ids(manager, settings.app_id, name, statuses, after):
            try:
                records = manager.recorded_history(instance_id, app_id=settings.app_id)
            except errors.InstanceNotFoundError:
                continue  # purged since it was listed
            except access.HistoryTamperedError as exc:
                tally.add(f"FAIL  {instance_id}: {exc}", ok=False)
                continue
            if not records:
                continue  # not started yet: nothing recorded
            try:
                result = replayer.replay(histories.from_records(instance_id, records))
            except histories.HistoryFormatError as exc:
                tally.add(f"FAIL  {instance_id}: {exc}", ok=False)
                continue
            tally.add(str(result), result.ok)
    except (StoreUnavailable, ValueError) as exc:
        raise CliError(str(exc)) from None
    finally:
        manager.close()


def _instance_ids(manager: WorkflowManager, app_id: str, name: str | None, statuses: list[str] | None,
                  after: datetime | None) -> Iterator[str]:
    """Matching instance IDs, oldest first, a page at a time (never all in memory)."""
    offset = 0
    while True:
        page = manager.list_instances(app_id=app_id, name=name, statuses=statuses, created_after=after,
                                      limit=PAGE_SIZE, offset=offset, fetch_payloads=False)
        yield from (row.state.instance_id for row in page)
        if len(page) < PAGE_SIZE:
            return
        offset += len(page)
