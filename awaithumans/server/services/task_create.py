"""Creating tasks: validation up front, then a bulk, idempotent insert through the writer."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from awaithumans.core._codes import ErrorCode
from awaithumans.core._forms import form_from_json_schema
from awaithumans.core._receipts import shown_sha256
from awaithumans.core._routes import InvalidNotifyRouteError, NotifyRoute, parse_routes
from awaithumans.core._wire import TASK_ID_PREFIX, CreateTaskRequest, TaskStatus, TaskView
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import AuditRow, OutboxRow, TaskRow, UserRow
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.db.types import utcnow
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import SYSTEM, Principal
from awaithumans.server.security.outbound import url_refusal
from awaithumans.server.security.receipts import chain_hash
from awaithumans.server.services import candidates
from awaithumans.server.services.delegation import Hop, follow_delegations
from awaithumans.server.services.events import created_rows
from awaithumans.server.services.lifecycle import Channel, audit_values
from awaithumans.server.services.nudge_plan import first_nudge_at
from awaithumans.server.services.policy import policy_from_request
from awaithumans.server.services.replicas import announce
from awaithumans.server.services.routing import group_of, pick_members
from awaithumans.server.services.verifier_gate import refuse_config
from awaithumans.server.services.views import seal_for, snapshot_of, view_of
from awaithumans.server.services.writer import Write
from awaithumans.verifiers import VerifierConfig


def new_task_id() -> str:
    return TASK_ID_PREFIX + secrets.token_hex(12)


@dataclass(slots=True)
class Created:
    """Outcome of a create: the task's view, and whether it already existed."""

    view: TaskView | None
    replayed: bool = False
    conflict: bool = False


def _check_callback_url(url: str | None) -> None:
    if url is None:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(
            400,
            ErrorCode.INVALID_CALLBACK_URL,
            f"callback_url must be an http(s) URL, got {url!r}.",
        )


def _assignee_emails(assign_to: dict[str, Any] | None) -> list[str]:
    """The emails ``assign_to`` names, in order (the 0.1 shapes); [] for a user id or a
    role or pool (``routing.group_of``, checked here too). Raises ``ApiError``."""
    if assign_to is None:
        return []
    if group_of(assign_to) is not None:
        return []
    if "user_id" in assign_to and not isinstance(assign_to["user_id"], str):
        raise ApiError(400, ErrorCode.INVALID_ASSIGNEE, "assign_to.user_id must be a string.")
    if isinstance(assign_to.get("email"), str):
        return [assign_to["email"].strip().lower()]
    emails = assign_to.get("emails")
    if isinstance(emails, list) and emails and all(isinstance(e, str) for e in emails):
        return [e.strip().lower() for e in emails]
    if isinstance(assign_to.get("user_id"), str):
        return []
    raise ApiError(
        400,
        ErrorCode.INVALID_ASSIGNEE,
        'assign_to must be {"email": ...}, {"emails": [...]}, {"user_id": ...}, '
        '{"role": ...} or {"pool": ...}.',
    )


async def prepare_create(
    ctx: ServerContext, req: CreateTaskRequest, principal: Principal
) -> CreateTask:
    """Check everything that needs no database, and build the write. Raises ``ApiError``."""
    schemas = ctx.schemas
    await schemas.check_schema(req.response_schema, which="response_schema")
    problems = await schemas.errors(req.payload_schema, req.payload, which="payload")
    if problems:
        raise ApiError(
            422,
            ErrorCode.SCHEMA_VALIDATION_FAILED,
            "payload does not match payload_schema.",
            details=problems,
        )
    if req.on_timeout is not None:
        # Checked now, not at the deadline: a default that cannot be applied is refused
        # while the agent is still there to hear it.
        problems = await schemas.errors(req.response_schema, req.on_timeout, which="on_timeout")
        if problems:
            raise ApiError(
                422,
                ErrorCode.SCHEMA_VALIDATION_FAILED,
                "on_timeout does not match response_schema.",
                details=problems,
            )
    try:
        parsed = parse_routes(req.notify or [])
    except InvalidNotifyRouteError as exc:
        raise ApiError(400, ErrorCode.INVALID_NOTIFY_ROUTE, str(exc)) from None
    routes = [str(r) for r in parsed]
    _check_callback_url(req.callback_url)
    refusal = req.callback_url and url_refusal(
        req.callback_url, ctx.settings.allow_private_callbacks
    )
    if refusal:
        raise ApiError(400, ErrorCode.CALLBACK_URL_NOT_ALLOWED, f"callback_url: {refusal}")
    emails = _assignee_emails(req.assign_to)
    policy = policy_from_request(req)
    verifier = None
    if req.verifier_config is not None:
        try:
            config = VerifierConfig.model_validate(req.verifier_config)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise ApiError(
                400,
                ErrorCode.INVALID_VERIFIER_CONFIG,
                f"verifier_config.{'.'.join(map(str, first['loc']))}: {first['msg']}",
            ) from None
        blocked = refuse_config(config, ctx.settings.verifier)
        if blocked is not None:
            raise ApiError(400, blocked.code, blocked.message)
        verifier = config.model_dump(mode="json")
    form = req.form_definition
    if form is None:
        form = form_from_json_schema(req.response_schema).model_dump(mode="json", exclude_none=True)
    task_id = new_task_id()
    now = utcnow()
    values: dict[str, Any] = {
        "id": task_id,
        # Keys are per credential (as Stripe's are per account): another agent's identical
        # key is another task, and neither can see or block the other's.
        "idempotency_scope": principal.owner_id,
        "idempotency_key": req.idempotency_key,
        "fingerprint": req.content_fingerprint(),
        "owner_id": principal.owner_id,
        "task": req.task,
        "status": TaskStatus.CREATED.value,
        "version": 0,
        "payload_enc": seal_for(ctx.sealer, task_id, req.payload),
        "response_enc": None,
        "payload_schema": req.payload_schema,
        "response_schema": req.response_schema,
        "form_definition": form,
        "timeout_seconds": req.timeout_seconds,
        "timeout_at": now + timedelta(seconds=req.timeout_seconds),
        "assign_to": req.assign_to,
        "assigned_to_user_id": req.assign_to.get("user_id") if req.assign_to else None,
        "notify": routes or None,
        "verifier_config": verifier,
        "redact_payload": req.redact_payload,
        "callback_url": req.callback_url,
        "task_metadata": req.task_metadata,
        "initial_response": req.initial_response,
        "verification_attempt": 0,
        "submission_enc": None,
        "verification_reason": None,
        "verification_error": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
        "timed_out_at": None,
        "completed_by_user_id": None,
        "completed_by_email": None,
        "completed_by_display_name": None,
        "completed_via_channel": None,
        "on_timeout_enc": None
        if req.on_timeout is None
        else seal_for(ctx.sealer, task_id, req.on_timeout),
        # What a decision receipt names as shown; fixed from now on (migration 0013).
        "shown_sha256": shown_sha256(req.payload, form, req.response_schema),
        "policy": policy,
        "next_nudge_at": first_nudge_at(policy, now, ctx.settings.business_hours),
        "nudges_done": 0,
        "first_viewed_at": None,
    }
    return CreateTask(ctx, principal, values, req.payload, emails, _recipients(parsed, req))


class CreateTask(Write[Created]):
    """Insert one task, or find the one its idempotency key already names."""

    group: ClassVar[str | None] = "create"

    def __init__(
        self,
        ctx: ServerContext,
        principal: Principal,
        values: dict[str, Any],
        payload: dict[str, Any],
        assignee_emails: list[str],
        recipients: list[tuple[str, str]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.principal = principal
        self.values = values
        self.payload = payload
        self.recipients = recipients or []
        # Several addresses: offered to each (first to claim, ``services/candidates.py``).
        self.base_policy: dict[str, Any] | None = values["policy"]
        self.offered = candidates.listed(values["assign_to"], self.base_policy)
        self.assignee_emails = [] if self.offered else assignee_emails
        self.routed_to = group_of(values["assign_to"]) if values["assign_to"] else None
        self.named_user_id: str | None = values["assigned_to_user_id"]
        # Set while resolving the assignee: what the created row's detail says of a role
        # or pool, and the delegations followed (one audit row each, after it).
        self.routing: dict[str, Any] | None = None
        self.delegations: tuple[Hop, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """(scope, idempotency key): what names one task."""
        return (str(self.values["idempotency_scope"]), str(self.values["idempotency_key"]))

    def record(self) -> TaskRecord:
        """The task as inserted (assignee resolved)."""
        return TaskRecord.from_row(self.values)

    def stamp_first_rows(self) -> None:
        """Make the task's first audit rows: "created", whose hash starts the chain, then
        one "delegated" per delegation followed; the last hash is the task's head."""
        status = TaskStatus(self.values["status"])
        row = audit_values(
            self.values["id"],
            action="created",
            from_status=None,
            to_status=status,
            actor=self.principal,
            channel=Channel.API,
            detail=self.routing,
        )
        row["chain_hash"] = chain_hash(None, row)
        self.first_rows = [row]
        for hop in self.delegations:
            row = audit_values(
                self.values["id"],
                action="delegated",
                from_status=status,
                to_status=status,
                actor=SYSTEM,
                channel=Channel.SYSTEM,
                detail=hop.detail(),
            )
            row["chain_hash"] = chain_hash(self.first_rows[-1]["chain_hash"], row)
            self.first_rows.append(row)
        self.values["audit_head"] = self.first_rows[-1]["chain_hash"]

    def outcome_for_existing(self, task: TaskRecord) -> Created:
        # Found in this credential's own scope: its task, unless the content differs.
        if task.fingerprint != self.values["fingerprint"]:
            return Created(None, conflict=True)
        return Created(view_of(task, self.ctx.sealer, self.ctx.settings.base_url()), replayed=True)

    @classmethod
    async def apply_many(cls, conn: AsyncConnection, writes: Sequence[Write[Any]]) -> list[Any]:
        creates = [w for w in writes if isinstance(w, CreateTask)]
        existing = await _tasks_by_key(conn, {w.key for w in creates})
        outcomes: list[Created | None] = []
        fresh: dict[tuple[str, str], CreateTask] = {}
        for w in creates:
            if w.key in existing:
                outcomes.append(w.outcome_for_existing(existing[w.key]))
            elif w.key in fresh:
                outcomes.append(w.outcome_for_existing(TaskRecord.from_row(fresh[w.key].values)))
            else:
                fresh[w.key] = w
                outcomes.append(None)
        # Only new tasks take a member's turn or follow a delegation: a replayed create
        # returns the task as it was made.
        await _resolve_assignees(conn, list(fresh.values()))
        for w in fresh.values():
            w.stamp_first_rows()
        inserted: set[str] = set()
        if fresh:
            insert_fn = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = (
                insert_fn(TaskRow)
                .on_conflict_do_nothing(index_elements=["idempotency_scope", "idempotency_key"])
                .returning(TaskRow.id)
            )
            result = await conn.execute(stmt, [w.values for w in fresh.values()])
            inserted = {r[0] for r in result}
        audits: list[dict[str, Any]] = []
        jobs: list[dict[str, Any]] = []
        raced = [w for w in fresh.values() if w.values["id"] not in inserted]
        raced_rows: dict[tuple[str, str], TaskRecord] = {}
        if raced:
            # Another process inserted the same key between our read and our insert.
            raced_rows = await _tasks_by_key(conn, {w.key for w in raced})
        for i, w in enumerate(creates):
            if outcomes[i] is not None:
                continue
            if w.values["id"] not in inserted:
                outcomes[i] = w.outcome_for_existing(raced_rows[w.key])
                continue
            audits.extend(w.first_rows)
            jobs.extend(created_rows(w.values["id"], w.values["notify"]))
            outcomes[i] = Created(
                view_of(w.record(), w.ctx.sealer, w.ctx.settings.base_url(), payload=w.payload)
            )
        if audits:
            await conn.execute(insert(AuditRow), audits)
            # Other processes' dashboards learn of new tasks the way they learn of changes
            # (in chunks: a NOTIFY payload is limited to 8,000 bytes).
            new_ids = [a["task_id"] for a in audits]
            for start in range(0, len(new_ids), 200):
                await announce(conn, ",".join(new_ids[start : start + 200]), 0)
        if jobs:
            await conn.execute(insert(OutboxRow), jobs)
        return outcomes

    def after(self, result: Created) -> None:
        if result.view is None or result.replayed:
            return
        self.ctx.hub.remember(snapshot_of(self.record(), None))
        self.ctx.hub.changed()
        self.ctx.wake.deadline(self.values["timeout_at"])
        if self.values["next_nudge_at"] is not None:
            self.ctx.wake.deadline(self.values["next_nudge_at"])
        if self.values["notify"]:
            self.ctx.wake.outbox()


async def _tasks_by_key(
    conn: AsyncConnection, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], TaskRecord]:
    """The tasks these (scope, key) pairs already name, by pair."""
    by_scope: dict[str, list[str]] = {}
    for scope, key in sorted(keys):
        by_scope.setdefault(scope, []).append(key)
    found: dict[tuple[str, str], TaskRecord] = {}
    # One query per scope (a batch nearly always has one): "scope = ? AND key IN (...)" is a
    # range of the (scope, key) unique index, where a row-value IN over the pairs made
    # SQLite scan the whole table (creates/s fell with the table's size).
    for scope, scoped in by_scope.items():
        rows = await conn.execute(
            select(TaskRow).where(
                TaskRow.idempotency_scope == scope, TaskRow.idempotency_key.in_(scoped)
            )
        )
        for r in rows.mappings():
            found[(r["idempotency_scope"], r["idempotency_key"])] = TaskRecord.from_row(r)
    return found


def _recipients(routes: Sequence[NotifyRoute], req: CreateTaskRequest) -> list[tuple[str, str]]:
    """The people a task goes to one by one (Slack DMs), for the implicit assignee.

    Only when the agent named no assignee: the recipient of a DM is who answers it. Names
    that need a Slack lookup (``@handle``) are matched when the DM goes out instead; task
    creation never waits for Slack.
    """
    if req.assign_to is not None:
        return []
    return [
        ("slack", r.target) if r.target_kind == "user_id" else ("email", r.target.lower())
        for r in routes
        if r.channel == "slack" and r.target_kind in ("user_id", "email")
    ]


async def _resolve_assignees(conn: AsyncConnection, creates: list[CreateTask]) -> None:
    """Pin each task to its assignee, then hand it on from anyone away to their delegate
    (``services/delegation.py``, an audit row per hop)."""
    for w in creates:
        # From the request again: a batch that failed is retried write by write.
        w.values["assigned_to_user_id"] = w.named_user_id
        w.values["status"] = TaskStatus.CREATED.value
        w.values["policy"] = w.base_policy
        w.routing = None
        w.delegations = ()
    await _pin_assignees(conn, creates)
    now = utcnow()
    offered = [w for w in creates if w.offered]
    if offered:
        known = await candidates.known_users(conn, {e for w in offered for e in w.offered})
        away = await follow_delegations(conn, set(known.values()), now)
        for w in offered:
            w.values["policy"], w.routing = candidates.offer(w.offered, known, w.base_policy, away)
    routed = [(w, w.routed_to) for w in creates if w.routed_to is not None]
    picked = await pick_members(conn, [group for _w, group in routed], now)
    for (w, group), person in zip(routed, picked, strict=True):
        w.values["assigned_to_user_id"] = person
        if person is not None:
            w.values["status"] = TaskStatus.ASSIGNED.value
            w.routing = {
                "routed_to": group.as_detail(),
                "assigned_to": person,
                "message": f"Routed to {group}: its least recently assigned member.",
            }
        else:
            # Chosen over refusing the create: the agent's ask is not lost while a role is
            # being staffed; operators see it (and this note in its audit trail) and can
            # assign it.
            w.routing = {
                "routed_to": group.as_detail(),
                "assigned_to": None,
                "message": f"No active member of {group}: unassigned, open to operators.",
            }
    assigned = {w.values["assigned_to_user_id"] for w in creates} - {None}
    if not assigned:
        return
    delegated = await follow_delegations(conn, assigned, now)
    for w in creates:
        found = delegated.get(w.values["assigned_to_user_id"])
        if found is not None:
            w.values["assigned_to_user_id"] = found.delegate
            w.delegations = found.hops


async def _pin_assignees(conn: AsyncConnection, creates: list[CreateTask]) -> None:
    """Pin each task to an active directory user it names (by id, or the first email found),
    else to the first directory user one of its Slack DMs goes to.

    A name that is not (yet) in the directory stays in ``assign_to`` for the record; the
    task is then open to operators, as if unassigned.
    """
    emails = {e for w in creates for e in w.assignee_emails}
    emails |= {v for w in creates for kind, v in w.recipients if kind == "email"}
    slack_ids = {v for w in creates for kind, v in w.recipients if kind == "slack"}
    ids = {w.values["assigned_to_user_id"] for w in creates} - {None}
    if not emails and not ids and not slack_ids:
        return
    rows = (
        await conn.execute(
            select(UserRow.id, UserRow.email, UserRow.slack_user_id).where(
                UserRow.email.in_(emails)
                | UserRow.id.in_(ids)
                | UserRow.slack_user_id.in_(slack_ids),
                UserRow.is_active.is_(True),
            )
        )
    ).all()
    by_email = {r.email: r.id for r in rows if r.email}
    by_slack = {r.slack_user_id: r.id for r in rows if r.slack_user_id}
    known_ids = {r.id for r in rows}
    for w in creates:
        if w.values["assigned_to_user_id"] not in known_ids:
            w.values["assigned_to_user_id"] = None
        for email in w.assignee_emails:
            if email in by_email:
                w.values["assigned_to_user_id"] = by_email[email]
                break
        if w.values["assigned_to_user_id"] is None:
            for kind, value in w.recipients:
                found = (by_slack if kind == "slack" else by_email).get(value)
                if found is not None:
                    w.values["assigned_to_user_id"] = found
                    break
        if w.values["assigned_to_user_id"] is not None:
            w.values["status"] = TaskStatus.ASSIGNED.value
