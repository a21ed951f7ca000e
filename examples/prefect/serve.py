"""Serve the refund flow as a deployment whose runs suspend while the reviewer thinks.

    RELAY_URL=http://127.0.0.1:3003/ python serve.py

Start runs with ``prefect deployment run refund/refund-suspended -p order_id=... -p
amount_cents=...``. Each run looks the order up, creates the review task and suspends: its
process exits. The reviewer's answer reaches ``awaithumans relay prefect`` (RELAY_URL), which
resumes the run; this server then runs the flow again, which finds the answer and finishes.
"""

from __future__ import annotations

from flow import refund

if __name__ == "__main__":
    refund.serve(name="refund-suspended", parameters={"suspend": True})
