"""``GET /api/receipts/public-keys``: the keys decision receipts are checked with.

No credential needed: public keys are public, and whoever holds a receipt (an auditor, a
downstream system) should be able to fetch what checks it.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from awaithumans.core._receipts import ALGORITHM
from awaithumans.server.api.deps import Ctx
from awaithumans.server.security.receipts import signer_for

router = APIRouter(prefix="/api/receipts", tags=["receipts"])


class ReceiptKey(BaseModel):
    #: What a receipt's ``key_id`` names: the first 16 hex digits of SHA-256(public key).
    key_id: str
    #: The 32-byte Ed25519 public key, unpadded base64url.
    public_key: str
    #: True for the key new receipts are signed with; the others came from previous
    #: payload keys (``AWAITHUMANS_PAYLOAD_KEY_PREVIOUS``) and check older receipts.
    current: bool


class ReceiptKeys(BaseModel):
    algorithm: str = ALGORITHM
    keys: list[ReceiptKey]


@router.get("/public-keys", response_model=ReceiptKeys)
async def public_keys(ctx: Ctx) -> ReceiptKeys:
    """The current receipt public key, then the previous ones (newest first)."""
    keys = signer_for(ctx.keyring).public_keys()
    return ReceiptKeys(
        keys=[ReceiptKey(key_id=k.key_id, public_key=k.public_key, current=k.current) for k in keys]
    )
