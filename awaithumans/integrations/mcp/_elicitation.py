"""The elicitation bridge: an MCP server's questions to the user, answered by a person.

An agent built on the MCP SDK's client has no user at a keyboard to fill in the forms MCP
servers ask for (``elicitation/create``). :func:`elicitation_handler` is the callback its
session takes: each form request becomes an awaithumans task (the message as the question,
the requested schema as the response schema), and the person's typed answer goes back as
the ``accept`` result. Nobody answering in time is ``cancel`` (no choice was made); a task
cancelled on the server is ``decline`` (someone chose not to answer). URL-mode requests (a
third-party page to visit) are declined: there is no form for a person to fill in.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio
import httpx
from mcp.client.session import ClientRequestContext, ElicitationFnT
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
)
from pydantic import ValidationError

from awaithumans.core._ask import Assignee, _assign_to_wire, summary
from awaithumans.core._await import create_task
from awaithumans.core._client import TaskClient
from awaithumans.core._codes import ErrorCode
from awaithumans.core._discovery import resolve_server
from awaithumans.core._errors import (
    AwaitHumansError,
    InvalidRequestError,
    SchemaValidationError,
    TimeoutRangeError,
)
from awaithumans.core._forms import form_from_json_schema
from awaithumans.core._receipts import receipt_check
from awaithumans.core._wire import (
    MAX_POLL_SECONDS,
    CreateTaskRequest,
    PollResponse,
    TaskStatus,
    TaskView,
)

#: What the person is shown besides the question: the server's whole message.
MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"message": {"type": "string", "title": "Message"}},
    "required": ["message"],
}
DEFAULT_TITLE = "{message}"
# The task line's limit on the server; a longer message is cut there (it is whole in the payload).
_TITLE_LIMIT = 500
# After the task's deadline the server's scheduler ends it within a second or so.
_GRACE_SECONDS = 10.0
# Cancelling an abandoned task must not hold the closing session up for long.
_CANCEL_SECONDS = 5.0


def elicitation_handler(
    *,
    notify: list[str] | None = None,
    assign_to: Assignee | None = None,
    timeout_seconds: int = 3600,
    server_url: str | None = None,
    api_key: str | None = None,
    title: str = DEFAULT_TITLE,
) -> ElicitationFnT:
    """The ``elicitation_callback`` that has a person answer MCP servers' form requests.

    Use as ``ClientSession(read, write, elicitation_callback=elicitation_handler(...))`` or
    ``mcp.Client(server, elicitation_callback=elicitation_handler(...))``.

    Args:
        notify: Routes to tell of each request (``"slack:#approvals"``, ``"email:..."``).
        assign_to: Who answers: an email, several, or a structured assignment.
        timeout_seconds: How long the person has (60 s to 30 days); then ``cancel``.
        server_url: The awaithumans server; else ``AWAITHUMANS_URL``, the dev file, ...
        api_key: The credential; else ``AWAITHUMANS_API_KEY`` or the dev token.
        title: The task's line, a ``str.format`` template of ``{message}`` (the server's
            message; also shown whole with the task).

    Returns:
        The callback: ``accept`` with the person's answer as ``content``; ``cancel`` when
        nobody answered in time; ``decline`` when the task was cancelled (or the request
        was URL mode). Trouble reaching or using awaithumans is an error result (the
        server's request fails), with the stable code in ``data["error"]``.
    """

    async def handle(
        context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult | ErrorData:
        if not isinstance(params, ElicitRequestFormParams):
            return ElicitResult(action="decline")
        try:
            body = _request(
                params,
                title=title,
                notify=notify,
                assign_to=assign_to,
                timeout_seconds=timeout_seconds,
                request_id=str(context.request_id),
            )
            check = receipt_check(body)
            target = resolve_server(server_url, api_key)
            async with TaskClient(target.url, target.api_key, user_agent=_AGENT) as client:
                view, _, _ = await create_task(client, target.url, body)
                poll = await _final(client, view)
            if check is not None and poll.status is TaskStatus.COMPLETED:
                check(view.id, poll)
            return _result(poll)
        except AwaitHumansError as exc:
            return _error(exc)
        except ValidationError as exc:
            # An answer the protocol's content cannot carry (a nested object).
            return ErrorData(
                code=INTERNAL_ERROR,
                message=f"the answer does not fit an elicitation result: {summary(exc)}",
                data={"error": ErrorCode.SCHEMA_VALIDATION_FAILED},
            )

    return handle


_AGENT = "awaithumans-mcp-elicitation"


def _request(
    params: ElicitRequestFormParams,
    *,
    title: str,
    notify: list[str] | None,
    assign_to: Assignee | None,
    timeout_seconds: int,
    request_id: str,
) -> CreateTaskRequest:
    """The task for one form request (no I/O).

    Raises:
        SchemaValidationError: The requested schema or another value cannot make a task.
    """
    schema = dict(params.requested_schema)
    line = title.format(message=params.message).strip() or "An MCP server asks for input"
    if len(line) > _TITLE_LIMIT:
        line = line[: _TITLE_LIMIT - 1] + "…"
    try:
        form = form_from_json_schema(schema).model_dump(mode="json", exclude_none=True)
        return CreateTaskRequest(
            task=line,
            payload={"message": params.message},
            payload_schema=MESSAGE_SCHEMA,
            response_schema=schema,
            timeout_seconds=timeout_seconds,
            # Every request is a new question, even one worded as an earlier one was; the
            # key still makes the create's own retries safe.
            idempotency_key=f"mcp-elicitation-{uuid.uuid4().hex}",
            form_definition=form,
            assign_to=_assign_to_wire(assign_to),
            notify=notify,
            task_metadata={"mcp_elicitation": {"request_id": request_id}},
        )
    except ValidationError as exc:
        if any(e["loc"] == ("timeout_seconds",) for e in exc.errors()):
            raise TimeoutRangeError(timeout_seconds, 60, 30 * 24 * 3600) from None
        raise SchemaValidationError("request", summary(exc)) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise SchemaValidationError("requested schema", str(exc)) from None


async def _final(client: TaskClient, view: TaskView) -> PollResponse:
    """Long-poll the task until it ends; if the caller goes away first, cancel the task.

    The server asked within a request of its own; when that request is abandoned (the
    session closed, the tool call cancelled) nobody will read the answer, so the person
    should not be left to give it.
    """
    deadline = time.monotonic() + view.timeout_seconds + _GRACE_SECONDS
    poll = PollResponse(status=view.status, response=view.response, receipt=view.receipt)
    try:
        while not poll.status.is_terminal and time.monotonic() < deadline:
            poll = await client.poll(
                view.id,
                wait=min(MAX_POLL_SECONDS, max(1.0, deadline - time.monotonic())),
                deadline=deadline,
            )
    except anyio.get_cancelled_exc_class():
        await _abandon(client, view.id)
        raise
    return poll


async def _abandon(client: TaskClient, task_id: str) -> None:
    # Shielded from the cancellation that brought us here, and bounded: best effort, as
    # the task times out on its own anyway.
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CANCEL_SECONDS):
        try:
            await client.cancel_task(task_id, reason="the MCP request that asked was abandoned")
        except AwaitHumansError:
            pass
        except httpx.HTTPError:
            pass


def _result(poll: PollResponse) -> ElicitResult:
    if poll.status is TaskStatus.COMPLETED:
        return ElicitResult(action="accept", content=poll.response or {})
    if poll.status is TaskStatus.CANCELLED:
        return ElicitResult(action="decline")
    # Timed out (or no verdict the protocol could carry): nobody made a choice.
    return ElicitResult(action="cancel")


def _error(exc: AwaitHumansError) -> ErrorData:
    # The server's schema refused (by us or by awaithumans): its request's fault; anything
    # else (credential, reachability, this handler's settings) is the client's trouble.
    refused = isinstance(exc, InvalidRequestError | SchemaValidationError)
    code = INVALID_PARAMS if refused else INTERNAL_ERROR
    return ErrorData(code=code, message=exc.message, data={"error": exc.code})
