"""Dashboard pages with 10,000 tasks in the database: server time per page.

Runs the app in-process (its real lifespan, a SQLite file) so the time measured is the
server's own work for one request (routing, session lookup, queries, template), without a
network hop; the httpx in-process transport adds ~0.3 ms, so the figures are upper bounds.

    .venv/bin/python bench/dashboard_render.py [--tasks 10000]
"""

from __future__ import annotations

import asyncio
import re
import secrets
import tempfile
import time
from pathlib import Path

import httpx
from _common import Row, log, make_parser, ms, percentile, report  # type: ignore[import-not-found]

from awaithumans.server.app import create_app
from awaithumans.server.settings import Settings

ADMIN = "bench-admin-" + secrets.token_hex(8)
SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "notes": {"type": "string"}},
    "required": ["approved"],
}


def body(i: int) -> dict[str, object]:
    return {
        "task": f"Approve refund #{i} for order ord_{i:06d}?",
        "payload": {"order_id": f"ord_{i:06d}", "amount_usd": 10 + i % 500},
        "payload_schema": {"type": "object"},
        "response_schema": SCHEMA,
        "timeout_seconds": 86_400,
        "idempotency_key": f"bench-dash-{i}",
    }


async def seed(api: httpx.AsyncClient, n: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 250):
        batch = await asyncio.gather(
            *(api.post("/api/tasks", json=body(i)) for i in range(start, min(n, start + 250)))
        )
        ids.extend(r.json()["id"] for r in batch)
    # A fifth of them finished, so the audit page has something to show.
    for start in range(0, len(ids) // 5, 250):
        await asyncio.gather(
            *(
                api.post(f"/api/tasks/{t}/complete", json={"response": {"approved": True}})
                for t in ids[start : min(len(ids) // 5, start + 250)]
            )
        )
    return ids


async def sign_in(app: object, browser: httpx.AsyncClient) -> None:
    token = app.state.setup_token  # type: ignore[attr-defined]
    page = await browser.get(f"/setup?token={token}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    done = await browser.post(
        "/setup",
        data={
            "csrf_token": csrf.group(1),
            "token": token,
            "email": "ops@bench.local",
            "display_name": "Bench Operator",
            "password": "bench-password-1",
            "password_confirm": "bench-password-1",
        },
    )
    assert done.status_code == 303, done.text


async def time_page(client: httpx.AsyncClient, url: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs + 5):
        t0 = time.perf_counter()
        resp = await client.get(url)
        samples.append(time.perf_counter() - t0)
        assert resp.status_code == 200, (url, resp.status_code)
    return sorted(samples[5:])


async def main(n: int, runs: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'dash.db'}",
            payload_key=secrets.token_hex(32),
            admin_api_token=ADMIN,
            public_url="http://bench",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with (
                httpx.AsyncClient(
                    transport=transport,
                    base_url="http://bench",
                    headers={"Authorization": f"Bearer {ADMIN}"},
                ) as api,
                httpx.AsyncClient(transport=transport, base_url="http://bench") as browser,
            ):
                t0 = time.perf_counter()
                ids = await seed(api, n)
                log(f"seeded {len(ids):,} tasks in {time.perf_counter() - t0:.1f} s")
                await sign_in(app, browser)
                open_task, done_task = ids[-1], ids[0]
                pages = {
                    "/ (queue)": "/",
                    "/?q=ord_00999 (search)": "/?q=ord_00999",
                    "/ui/queue (live fragment)": "/ui/queue",
                    "/audit": "/audit",
                    "/task (open, form)": f"/task?id={open_task}",
                    "/task (finished)": f"/task?id={done_task}",
                    "/users": "/users",
                    "/settings": "/settings",
                }
                rows = []
                for label, url in pages.items():
                    samples = await time_page(browser, url, runs)
                    p50, p95 = percentile(samples, 50), percentile(samples, 95)
                    rows.append(
                        Row(
                            f"{label}, {n:,} tasks: p50 / p95",
                            "< 50 ms",
                            f"{ms(p50)} / {ms(p95)}",
                            "-",
                            p95 < 0.050,
                        )
                    )
                return rows


if __name__ == "__main__":
    parser = make_parser("Dashboard page render time with many tasks.")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    report(asyncio.run(main(args.tasks, args.runs)), args.json)
