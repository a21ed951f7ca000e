"""Email: an invoice sent to one person's inbox, answered with one click.

Start a server with an email transport (see README.md: ``logging`` prints each mail in the
server's terminal, nothing to set up), then run ``python invoice.py you@acme.com``. The mail
has one button per decision (pay, hold, reject): each opens a page to confirm, with room for
a note, and only confirming answers. Its **Open task** link signs the reviewer in to this
one task. Whatever they choose, this script gets the typed answer.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import BaseModel, Field

from awaithumans import await_human_sync


class Invoice(BaseModel):
    number: str
    vendor: str
    amount_usd: float = Field(description="Total, in dollars")
    due: str = Field(description="Payment due date")


class InvoiceDecision(BaseModel):
    # A choice of at most four options first: the mail gets a button per option.
    decision: Literal["pay", "hold", "reject"] = Field(description="What to do with it")
    note: str | None = Field(default=None, description="For the accounts team")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python invoice.py REVIEWER_EMAIL [INVOICE_NUMBER]", file=sys.stderr)
        return 2
    reviewer, number = argv[1], argv[2] if len(argv) == 3 else "INV-2041"
    invoice = Invoice(number=number, vendor="Northwind Traders", amount_usd=1240.5, due="Dec 20")
    answer = await_human_sync(
        task=f"Pay {invoice.vendor} invoice {number} (${invoice.amount_usd:,.2f})?",
        payload_schema=Invoice,
        payload=invoice,
        response_schema=InvoiceDecision,
        timeout_seconds=24 * 3600,
        # One person: they become the task's assignee, the one allowed to answer it.
        notify=[f"email:{reviewer}"],
        # One task per invoice: running the script again waits on the same mail.
        idempotency_key=f"email-invoice:{number}",
    )
    print(f"Invoice {number}: {answer.decision}" + (f" ({answer.note})" if answer.note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
