"""Settings → Email: add, change and remove the senders routes name (``email+NAME:``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from awaithumans.server.dashboard.access import ctx_of
from awaithumans.server.dashboard.admin_common import operator_form, text_field
from awaithumans.server.dashboard.pages_settings import settings_page_with
from awaithumans.server.notify.email.identities import (
    TRANSPORTS,
    Identity,
    RemoveIdentity,
    SaveIdentity,
    list_identities,
    problems,
)

router = APIRouter(include_in_schema=False)

_TEXT = ("name", "from_address", "from_name", "reply_to", "transport", "smtp_host", "smtp_port",
         "smtp_username")  # fmt: skip


@router.post("/settings/email/identities")
async def save_identity(request: Request) -> Response:
    posted = await operator_form(request, "/settings")
    if isinstance(posted, Response):
        return posted
    _who, form = posted
    ctx = ctx_of(request)
    values = {name: text_field(form, name) for name in _TEXT}
    values["name"] = values["name"].lower()
    for box in ("smtp_start_tls", "smtp_use_tls"):
        values[box] = "1" if form.get(box) else ""
    secret = text_field(form, "secret") or None
    transport = values["transport"] if values["transport"] in TRANSPORTS else "server"
    port = values["smtp_port"]
    identity = Identity(
        name=values["name"],
        from_address=values["from_address"],
        from_name=values["from_name"] or None,
        reply_to=values["reply_to"] or None,
        transport=transport,
        smtp_host=values["smtp_host"] or None,
        smtp_port=int(port) if port.isdigit() and len(port) <= 5 else None,
        smtp_username=values["smtp_username"] or None,
        smtp_start_tls=bool(values["smtp_start_tls"]),
        smtp_use_tls=bool(values["smtp_use_tls"]),
    )
    current = {i.name: i for i in await list_identities(ctx.engine)}.get(identity.name)
    # Saving again without retyping the secret keeps the stored one (it is never shown).
    kept = current is not None and current.has_secret and current.transport == transport
    wrong = problems(identity, secret or ("kept" if kept else None))
    if "\x00" in "".join(values.values()) + (secret or ""):
        wrong.setdefault("name", "Contains a character that cannot be stored.")
    if wrong:
        return await settings_page_with(
            request, sender_values=values, sender_errors=wrong, status_code=400
        )
    await ctx.writer.submit(SaveIdentity(ctx.sealer, identity, secret))
    return RedirectResponse("/settings?done=sender-saved#email-title", status_code=303)


@router.post("/settings/email/identities/{name}/remove")
async def remove_identity(request: Request, name: str) -> Response:
    posted = await operator_form(request, "/settings")
    if isinstance(posted, Response):
        return posted
    _who, _form = posted
    ctx = ctx_of(request)
    await ctx.writer.submit(RemoveIdentity(name))
    return RedirectResponse("/settings?done=sender-removed#email-title", status_code=303)
