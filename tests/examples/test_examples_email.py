"""``examples/email`` as its README runs it: a server with the ``logging`` transport (the
mail printed in its terminal), the script as a subprocess, and the reviewer following the
printed link, confirming, with a note."""

from __future__ import annotations

import asyncio
import html
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "email"


async def test_the_invoice_is_answered_from_the_printed_mail(tmp_path: Path) -> None:
    env = {"AWAITHUMANS_EMAIL_TRANSPORT": "logging", "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3"}
    with ServerProcess(workdir=tmp_path, env=env) as server:
        script = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE / "invoice.py"),
            "you@acme.com",
            cwd=tmp_path,
            env={
                **os.environ,
                "AWAITHUMANS_URL": server.url,
                "AWAITHUMANS_API_KEY": server.admin_token,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:

            async def printed() -> str | None:
                found = re.search(r"^  pay: (\S+)$", server.logs(), re.MULTILINE)
                return found[1] if found else None

            link: str = await until(printed, timeout=30, why=server.logs)
            logs = server.logs()
            assert "Subject: Review: Pay Northwind Traders invoice INV-2041 ($1,240.50)?" in logs
            assert re.search(r"^  hold: \S+$", logs, re.MULTILINE)
            assert f"Open task: {server.url}/handoff?t=" in logs
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as browser:
                page = await browser.get(link.removeprefix(server.url))
                assert page.status_code == 200, page.text
                assert "Decision: pay" in page.text
                hidden = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
                form = {k: html.unescape(v) for k, v in hidden.items()}
                done = await browser.post(
                    "/api/channels/email/answer", data={**form, "note": "Matches the PO"}
                )
                assert done.status_code == 200, done.text
            out, err = await asyncio.wait_for(script.communicate(), 30)
        finally:
            if script.returncode is None:
                script.kill()
                await script.wait()
    assert script.returncode == 0, err.decode()
    assert out.decode() == "Invoice INV-2041: pay (Matches the PO)\n"
