"""``awaithumans receipt-key`` and ``awaithumans verify-receipt`` with a real server's receipt.

The key the command prints (from the server's payload key) is the one the server lists;
a receipt from the API verifies offline (a file, stdin, a whole task body); a changed field,
another server's key or no key at all is refused with exit 1 (2 for no key) and says why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from awaithumans.server.cli.main import run
from awaithumans.server.security import KeyRing, generate_payload_key
from awaithumans.server.security.receipts import signer_for
from awaithumans.testing import ServerProcess

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).parent / "awaithumans")


def command(
    server: ServerProcess, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The installed command, in its own process, with the server's configuration."""
    return subprocess.run(
        [CLI, *args],
        env={
            "PATH": str(Path(sys.executable).parent),
            "AWAITHUMANS_DATABASE_URL": server.database_url,
            "AWAITHUMANS_PAYLOAD_KEY": server.payload_key,
            **env,
        },
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def completed_task(server: ServerProcess) -> dict[str, Any]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10
    ) as api:
        made = api.post(
            "/api/tasks",
            json={
                "task": "Ship the order?",
                "payload": {"order": "ord_9"},
                "payload_schema": {"type": "object"},
                "response_schema": {"type": "object"},
                "timeout_seconds": 600,
                "idempotency_key": "receipt-cli",
            },
        )
        assert made.status_code == 201, made.text
        done = api.post(f"/api/tasks/{made.json()['id']}/complete", json={"response": {"ok": 1}})
        assert done.status_code == 200, done.text
        task: dict[str, Any] = done.json()
    return task


def key_starting_with_dash() -> str:
    """Another server's public key whose base64url text starts with "-" (one key in 64)."""
    while True:
        key = signer_for(KeyRing.from_text(generate_payload_key())).public_key()
        if key.startswith("-"):
            return key


def test_receipt_key_and_verify_receipt(
    sqlite_server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = sqlite_server
    task = completed_task(server)
    listed = httpx.get(f"{server.url}/api/receipts/public-keys", timeout=10).json()["keys"]

    printed = command(server, "receipt-key")
    assert printed.returncode == 0, printed.stderr
    key = printed.stdout.strip()
    assert key == listed[0]["public_key"]

    # The task body as the API returned it, in a file: its receipt is checked.
    whole = tmp_path / "task.json"
    whole.write_text(json.dumps(task), encoding="utf-8")
    ok = command(server, "verify-receipt", str(whole), "--public-key", key)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"✓ Receipt valid: task {task['id']} ('Ship the order?') completed")
    assert f"via api at {task['completed_at'].replace('Z', '+00:00')}" in ok.stdout

    # Someone rewrites who answered: exit 1, naming the signature.
    forged = {**task["receipt"], "answered_by": {"id": "usr_x", "email": "x@acme.test"}}
    bad = command(
        server, "verify-receipt", "-", stdin=json.dumps(forged), AWAITHUMANS_RECEIPT_PUBLIC_KEY=key
    )
    assert bad.returncode == 1
    assert "✗ Receipt invalid (signature): The receipt's signature does not match" in bad.stderr

    # The rest in this process (the same entry point; a process start costs ~1.5 s).
    monkeypatch.delenv("AWAITHUMANS_RECEIPT_PUBLIC_KEY", raising=False)

    def cli(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    bare = tmp_path / "receipt.json"
    bare.write_text(json.dumps(task["receipt"]), encoding="utf-8")
    assert cli("verify-receipt", str(bare), "--public-key", key)[0] == 0
    other = signer_for(KeyRing.from_text(generate_payload_key())).public_key()
    code, _, err = cli("verify-receipt", str(bare), "--public-key", other)
    assert code == 1
    assert f"(unknown_key): The receipt was signed with key {task['receipt']['key_id']}" in err
    # A base64url key starting with "-" (one in 64) is read as the flag's value, not an option.
    dashed = key_starting_with_dash()
    code, _, err = cli("verify-receipt", str(bare), "--public-key", dashed)
    assert code == 1, err
    assert "(unknown_key)" in err
    # Several keys (a rotation's current and previous): the receipt's key id picks one.
    assert cli("verify-receipt", str(bare), "--public-key", f"{other},{key}")[0] == 0
    code, _, err = cli("verify-receipt", str(bare))
    assert code == 2
    assert "give the server's public key with --public-key" in err
    code, _, err = cli("verify-receipt", str(bare), "--public-key", "nonsense")
    assert (code, "(public_key)" in err) == (1, True)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json", encoding="utf-8")
    code, _, err = cli("verify-receipt", str(garbage), "--public-key", key)
    assert (code, "(malformed)" in err) == (1, True)
    code, _, err = cli("verify-receipt", str(tmp_path / "absent.json"), "--public-key", key)
    assert (code, "✗ Receipt not read" in err) == (1, True)
    open_task = {**task, "receipt": None, "status": "created"}
    whole.write_text(json.dumps(open_task), encoding="utf-8")
    code, _, err = cli("verify-receipt", str(whole), "--public-key", key)
    assert (code, "(missing): The task has no receipt" in err) == (1, True)

    # receipt-key --all during a rotation lists both keys with their ids.
    old = server.payload_key
    monkeypatch.setenv("AWAITHUMANS_DATABASE_URL", server.database_url)
    monkeypatch.setenv("AWAITHUMANS_PAYLOAD_KEY", generate_payload_key())
    monkeypatch.setenv("AWAITHUMANS_PAYLOAD_KEY_PREVIOUS", old)
    code, out, _ = cli("receipt-key", "--all")
    assert code == 0
    current, previous = out.splitlines()
    assert previous == f"{task['receipt']['key_id']} {key} previous"
    assert current.endswith(" current")
    monkeypatch.delenv("AWAITHUMANS_PAYLOAD_KEY")
    code, _, err = cli("receipt-key")
    assert code == 2
    assert "AWAITHUMANS_PAYLOAD_KEY is not set" in err
