"""``awaithumans audit export`` and ``awaithumans audit verify``: the hash-chained trail.

Every audit row carries ``chain_hash`` (``security/receipts.py`` ``chain_hash``), covering
its fields and the task's previous row's hash, and each task keeps its newest hash
(``tasks.audit_head``). ``verify`` walks each task's rows in order and names the first row
that does not hash to what is stored: an edited row, a row inserted or deleted before it, or
(the last row's hash not being the task's head) rows deleted at the end. Rows written before
migration 0012 have no hash; the chain starts after them.

Both read the database the server's configuration names, like ``awaithumans db backup``,
in one read-only snapshot (``REPEATABLE READ`` on PostgreSQL), streamed: ordered by task,
then row, so a check holds one task in memory at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TextIO

from sqlalchemy import exists, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._receipts import canonical_bytes
from awaithumans.server.db.engine import make_engine
from awaithumans.server.db.models import AuditRow, TaskRow
from awaithumans.server.security.private_files import create_private_file
from awaithumans.server.security.receipts import AUDIT_CHAIN_FIELDS, chain_hash, format_at
from awaithumans.server.settings import Settings

SettingsSource = Callable[[], Settings]

#: The columns of an export, in order: the row's id, the fields its hash covers, the hash.
COLUMNS = ("id", *AUDIT_CHAIN_FIELDS, "chain_hash")
# Lines of broken tasks printed before the rest are only counted.
_MAX_REPORTED = 50


# -- reading ---------------------------------------------------------------------------------


def _problem(settings: Settings) -> str | None:
    path = settings.sqlite_path()
    if path is not None and not path.exists():
        # make_engine would create an empty file there.
        return f"there is no database at {path}"
    return None


@asynccontextmanager
async def _snapshot(settings: Settings) -> AsyncIterator[AsyncConnection]:
    """A connection in a read-only snapshot of the whole database."""
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
                await conn.begin()
                await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            else:
                # A deferred transaction: every read after the first sees the same state.
                await conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                await conn.rollback()
    finally:
        await engine.dispose()


def _rows_query(task_id: str | None) -> Any:
    audit = AuditRow.__table__.c
    query = (
        select(*(audit[name] for name in COLUMNS), TaskRow.audit_head)
        .join(TaskRow, TaskRow.id == AuditRow.task_id)
        .order_by(AuditRow.task_id, AuditRow.id)
    )
    return query.where(AuditRow.task_id == task_id) if task_id else query


def _exported(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row as the export writes it: ``at`` in the chain's own format."""
    out = {name: row[name] for name in COLUMNS}
    if isinstance(out["at"], datetime):
        out["at"] = format_at(out["at"])
    return out


# -- export ----------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, settings_source: SettingsSource) -> int:
    settings = settings_source()
    problem = _problem(settings)
    output: Path | None = Path(args.output) if args.output else None
    if problem is None and output is not None and output.exists():
        problem = f"{output} exists; name a new file"
    if problem is not None:
        print(f"awaithumans audit export: {problem}.", file=sys.stderr)
        return 2

    async def run(out: TextIO) -> int:
        writer = _Writer(out, args.format)
        async with _snapshot(settings) as conn:
            result = await conn.stream(_rows_query(args.task))
            async for row in result.mappings():
                writer.write(_exported(row))
        return writer.count

    try:
        if output is None:
            count = asyncio.run(run(sys.stdout))
        else:
            create_private_file(output)
            with output.open("w", encoding="utf-8", newline="") as out:
                count = asyncio.run(run(out))
    except SQLAlchemyError as exc:
        return _database_error("export", exc)
    if output is not None:
        print(f"✓ Exported {count} audit rows to {output} ({args.format}).", file=sys.stderr)
    return 0


class _Writer:
    def __init__(self, out: IO[str], fmt: str) -> None:
        self.out = out
        self.count = 0
        self._csv = csv.writer(out) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(COLUMNS)

    def write(self, row: dict[str, Any]) -> None:
        self.count += 1
        if self._csv is None:
            self.out.write(canonical_bytes(row).decode("utf-8") + "\n")
            return
        detail = row["detail"]
        row["detail"] = "" if detail is None else canonical_bytes(detail).decode("utf-8")
        self._csv.writerow(["" if row[name] is None else row[name] for name in COLUMNS])


# -- verify ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Break:
    """Where a task's chain stops holding: the task, the row (None: its end) and why."""

    task_id: str
    row_id: int | None
    why: str

    def line(self) -> str:
        where = f"row {self.row_id}" if self.row_id is not None else "its newest row"
        return f"task {self.task_id}, {where}: {self.why}"


@dataclass(slots=True)
class ChainCheck:
    """Checks tasks' rows given in (task, row id) order; one task's state at a time."""

    breaks: list[Break] = field(default_factory=list)
    tasks: int = 0
    rows: int = 0
    unchained: int = 0
    _task: str | None = None
    _head: str | None = None
    _known_head: bool = False
    _last: str | None = None
    _pending_unchained: int = 0
    _broken: bool = False

    def row(self, row: Mapping[Any, Any], head: str | None, *, known_head: bool = True) -> None:
        task_id = str(row["task_id"])
        if task_id != self._task:
            self.end_task()
            self._task, self._head, self._known_head = task_id, head, known_head
            self._last, self._pending_unchained, self._broken = None, 0, False
            self.tasks += 1
        self.rows += 1
        if self._broken:
            return
        stored = row["chain_hash"]
        if stored is None:
            if self._last is not None:
                self._fail(row, "it has no hash, after rows that have one (inserted?)")
            else:
                self._pending_unchained += 1
            return
        if self._last is None and self._pending_unchained and row["from_status"] is None:
            # The task was created with the chain, so no row can come before its first.
            self._fail(row, "rows without a hash come before the task's creation (inserted?)")
            return
        self.unchained += self._pending_unchained
        self._pending_unchained = 0
        if chain_hash(self._last, row) != stored:
            self._fail(
                row,
                "its content does not match its hash (the row was edited, or a row before"
                " it was deleted or inserted)",
            )
            return
        self._last = stored

    def _fail(self, row: Mapping[Any, Any], why: str) -> None:
        assert self._task is not None
        self.breaks.append(Break(self._task, int(row["id"]), why))
        self._broken = True

    def end_task(self) -> None:
        if self._task is None or self._broken:
            return
        self.unchained += self._pending_unchained
        self._pending_unchained = 0
        if self._known_head and self._head != self._last:
            self.breaks.append(
                Break(
                    self._task,
                    None,
                    "the task's newest hash is not its last row's (rows at its end were"
                    " deleted, or the head was changed)",
                )
            )
        self._task = None

    def headless(self, task_id: str) -> None:
        """A task that has a head but no rows at all: every row was deleted."""
        self.tasks += 1
        self.breaks.append(Break(task_id, None, "the task has a chain head but no audit rows"))


def cmd_verify(args: argparse.Namespace, settings_source: SettingsSource) -> int:
    if args.input:
        try:
            check = _check_file(Path(args.input), args.task)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"awaithumans audit verify: cannot read {args.input}: {exc}", file=sys.stderr)
            return 2
        return _report(check, f"{args.input}")
    settings = settings_source()
    problem = _problem(settings)
    if problem is not None:
        print(f"awaithumans audit verify: {problem}.", file=sys.stderr)
        return 2

    async def run() -> ChainCheck:
        check = ChainCheck()
        async with _snapshot(settings) as conn:
            result = await conn.stream(_rows_query(args.task))
            async for row in result.mappings():
                check.row(row, row["audit_head"])
            check.end_task()
            headless = select(TaskRow.id).where(
                TaskRow.audit_head.is_not(None),
                ~exists().where(AuditRow.task_id == TaskRow.id),
            )
            if args.task:
                headless = headless.where(TaskRow.id == args.task)
            for (task_id,) in await conn.execute(headless.order_by(TaskRow.id)):
                check.headless(task_id)
        return check

    try:
        check = asyncio.run(run())
    except SQLAlchemyError as exc:
        return _database_error("verify", exc)
    return _report(check, "the database")


def _check_file(path: Path, task_id: str | None) -> ChainCheck:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("a line is not a JSON object")
                if task_id is None or row["task_id"] == task_id:
                    rows.append(row)
    check = ChainCheck()
    for row in _in_chain_order(rows):
        check.row(row, None, known_head=False)
    check.end_task()
    return check


def _in_chain_order(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return iter(sorted(rows, key=lambda r: (str(r["task_id"]), int(r["id"]))))


def _report(check: ChainCheck, where: str) -> int:
    covered = check.rows - check.unchained
    older = f" ({check.unchained} older rows have no hash)" if check.unchained else ""
    if not check.breaks:
        print(f"✓ Audit chain intact in {where}: {covered} rows of {check.tasks} tasks{older}.")
        return 0
    print(
        f"✗ Audit chain broken in {len(check.breaks)} of {check.tasks} tasks in {where}:",
        file=sys.stderr,
    )
    for found in check.breaks[:_MAX_REPORTED]:
        print(f"  {found.line()}", file=sys.stderr)
    if len(check.breaks) > _MAX_REPORTED:
        print(f"  ... and {len(check.breaks) - _MAX_REPORTED} more", file=sys.stderr)
    return 1


def _database_error(command: str, exc: SQLAlchemyError) -> int:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(
        f"awaithumans audit {command}: cannot read the audit trail: {first}\n"
        "  Is this the server's database, at migration 0012 or later (start the server once)?",
        file=sys.stderr,
    )
    return 2
