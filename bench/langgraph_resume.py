"""Answer-to-resumed latency for the LangGraph adapter: a human answers, how soon has the
interrupted graph run to its end?

    .venv/bin/python bench/langgraph_resume.py [--runs 100] [--json out.json]

One ``awaithumans serve`` (SQLite) in a subprocess; everything else in this process on one
event loop: a two-node graph (``approve`` calls ``await_human``, then ``pay``) compiled
with LangGraph's ``AsyncSqliteSaver`` on a file, and ``relay_app`` served by uvicorn on
127.0.0.1 as the tasks' ``callback_url``. For each run: invoke a new thread until it
interrupts, then t0, POST ``/complete`` from an already-connected client, and t1 when the
resumer has answered the webhook, i.e. ``resume_from_event`` returned: the graph finished
and its final checkpoint is written. Latency = t1 - t0. Target: p50 <= 30 ms.

For reference, the same graph shape with a bare ``interrupt()`` and no awaithumans:
LangGraph's own ``ainvoke(Command(resume=...))`` to the end, on the same checkpointer.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

import httpx
import uvicorn
from _common import Row, log, machine, make_parser, ms, percentile, quiet_check, report
from _refund import RefundDecision, RefundRequest, answer, payload
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from awaithumans.adapters.langgraph import await_human, relay_app
from awaithumans.server.security import KeyRing
from awaithumans.server.settings import Settings
from awaithumans.server.webhook_secret import webhook_secret
from awaithumans.testing import ServerProcess

WARMUP_RUNS = 10


class State(TypedDict, total=False):
    i: int
    callback_url: str
    approved: bool
    paid: bool


async def approve(state: State) -> dict[str, Any]:
    decision = await await_human(
        task=f"Refund order ord_{state['i']:06d}?",
        payload_schema=RefundRequest,
        payload=payload(state["i"]),
        response_schema=RefundDecision,
        timeout_seconds=3600,
        callback_url=state["callback_url"],
    )
    return {"approved": decision.approved}


async def approve_bare(state: State) -> dict[str, Any]:
    # LangGraph alone: the same question as a bare interrupt, the answer as the resume value.
    value = interrupt({"question": f"Refund order ord_{state['i']:06d}?"})
    return {"approved": RefundDecision.model_validate(value).approved}


async def pay(state: State) -> dict[str, Any]:
    return {"paid": state["approved"]}


def build(checkpointer: BaseCheckpointSaver[Any], *, bare: bool) -> CompiledStateGraph[Any]:
    builder = StateGraph(State)
    builder.add_node("approve", approve_bare if bare else approve)
    builder.add_node("pay", pay)
    builder.add_edge(START, "approve")
    builder.add_edge("approve", "pay")
    builder.add_edge("pay", END)
    return builder.compile(checkpointer=checkpointer)


def config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


class TimedResumer:
    """``relay_app`` on a pre-bound socket; records when each webhook's reply went out."""

    def __init__(self, graph: CompiledStateGraph[Any], secret: str, *, close: bool) -> None:
        self.inner = relay_app(graph, secret)
        self.close = close
        self.done: dict[str, asyncio.Future[tuple[float, float, int, Any]]] = {}
        # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets
        # that say so, and with Nagle on, a reply written as headers then body waits ~40 ms
        # for the peer's delayed ACK on a kept-alive connection.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def expect(self, task_id: str) -> asyncio.Future[tuple[float, float, int, Any]]:
        return self.done.setdefault(task_id, asyncio.get_running_loop().create_future())

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        arrived = time.perf_counter()
        body = bytearray()
        status: list[int] = []

        async def recv() -> Any:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        async def snd(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                if self.close:
                    headers = [*message.get("headers", []), (b"connection", b"close")]
                    message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                # resume_from_event has returned: the resumed run ended, checkpoint written.
                replied = time.perf_counter()
                task_id = json.loads(body)["data"]["task_id"]
                future = self.expect(task_id)
                if not future.done():
                    future.set_result((arrived, replied, status[0], json.loads(message["body"])))
            await send(message)

        await self.inner(scope, recv, snd)

    async def serve(self) -> tuple[uvicorn.Server, asyncio.Task[None]]:
        server = uvicorn.Server(
            uvicorn.Config(
                self.app, interface="asgi3", log_level="warning", lifespan="off", access_log=False
            )
        )
        return server, asyncio.create_task(server.serve(sockets=[self.sock]))


async def measure_adapter(
    server: ServerProcess, db: Path, runs: int, *, close: bool
) -> dict[str, list[float]]:
    key = server.payload_key
    secret = webhook_secret(Settings(payload_key=key), KeyRing.from_text(key))
    out: dict[str, list[float]] = {"total": [], "post": [], "deliver": [], "resume": []}
    run = f"{os.urandom(4).hex()}-{int(close)}"
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = build(saver, bare=False)
        resumer = TimedResumer(graph, secret, close=close)
        uv, serving = await resumer.serve()
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.admin_token}"},
            timeout=30,
        ) as http:
            await http.get("/api/health")  # connect once; the answering client stays connected
            for i in range(WARMUP_RUNS + runs):
                thread = f"bench-{run}-{i}"
                first = await graph.ainvoke({"i": i, "callback_url": resumer.url}, config(thread))
                task_id = first["__interrupt__"][0].value["awaithumans"]["task_id"]
                done = resumer.expect(task_id)
                t0 = time.perf_counter()
                resp = await http.post(
                    f"/api/tasks/{task_id}/complete", json={"response": answer(i)}
                )
                t_ack = time.perf_counter()
                resp.raise_for_status()
                arrived, t1, status, reply = await asyncio.wait_for(done, 30)
                assert (status, reply.get("resumed")) == (200, True), (status, reply)
                if i < WARMUP_RUNS:
                    continue
                out["total"].append(t1 - t0)
                out["post"].append(t_ack - t0)
                out["deliver"].append(arrived - t0)
                out["resume"].append(t1 - arrived)
            # Every thread really finished, with the human's answer.
            for i in (WARMUP_RUNS, WARMUP_RUNS + runs - 1):
                state = await graph.aget_state(config(f"bench-{run}-{i}"))
                assert state.next == ()
                assert state.values["paid"] is answer(i)["approved"]
        uv.should_exit = True
        await serving
        resumer.sock.close()
    return {k: sorted(v) for k, v in out.items()}


async def measure_reference(db: Path, runs: int) -> dict[str, list[float]]:
    """LangGraph alone: ``ainvoke(Command(resume=...))`` to the end of the graph."""
    out: dict[str, list[float]] = {"command": []}
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = build(saver, bare=True)
        for i in range(WARMUP_RUNS + runs):
            thread = f"ref-{i}"
            await graph.ainvoke({"i": i}, config(thread))
            t0 = time.perf_counter()
            final = await graph.ainvoke(Command(resume=answer(i)), config(thread))
            t1 = time.perf_counter()
            assert final["paid"] is answer(i)["approved"]
            if i >= WARMUP_RUNS:
                out["command"].append(t1 - t0)
    return {k: sorted(v) for k, v in out.items()}


def main() -> None:
    parser = make_parser("Human answer -> LangGraph graph resumed and finished.")
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    os.environ["AWAITHUMANS_QUIET"] = "1"
    log(f"machine: {machine()}")
    busy = quiet_check(args.wait_quiet)
    with tempfile.TemporaryDirectory(prefix="bench-langgraph-") as tmp, ServerProcess() as server:
        os.environ["AWAITHUMANS_URL"] = server.url
        os.environ["AWAITHUMANS_API_KEY"] = server.admin_token
        t = time.perf_counter()
        res = asyncio.run(measure_adapter(server, Path(tmp) / "a.db", args.runs, close=False))
        log(f"adapter: {args.runs} runs in {time.perf_counter() - t:.1f}s")
        closed = asyncio.run(measure_adapter(server, Path(tmp) / "b.db", args.runs, close=True))
        log("adapter, resumer closing each connection: done")
        ref = asyncio.run(measure_reference(Path(tmp) / "ref.db", args.runs))

    total = res["total"]
    n = len(total)

    def trio(values: list[float]) -> str:
        return f"{ms(percentile(values, 50))} / {ms(percentile(values, 95))} / {ms(values[-1])}"

    rows = [
        Row(f"answer→graph finished p50 (n={n})", "≤ 30 ms", ms(percentile(total, 50)), "-",
            percentile(total, 50) <= 0.030),
        Row("answer→graph finished p95", "-", ms(percentile(total, 95)), "-"),
        Row("answer→graph finished max", "-", ms(total[-1]), "-"),
        Row("  POST /complete round trip p50 / p95 / max", "-", trio(res["post"]), "-"),
        Row("  answer→webhook at resumer p50 / p95 / max", "-", trio(res["deliver"]), "-"),
        Row("  webhook→resume_from_event returned p50 / p95 / max", "-", trio(res["resume"]),
            "-"),
        Row("what-if: resumer replies `connection: close`, answer→finished p50 / p95 / max",
            "-", trio(closed["total"]), "-"),
        Row("  what-if: answer→webhook at resumer p50 / p95 / max", "-", trio(closed["deliver"]),
            "-"),
        Row("ref: LangGraph Command(resume)→end, SQLite p50 / p95 / max", "-",
            trio(ref["command"]), "-"),
        Row("other processes' CPU before start (noise)", "-", f"{busy:.0f}% of a core", "-"),
    ]  # fmt: skip
    notes = [
        f"{WARMUP_RUNS} warm-up runs excluded from every series; one thread per run.",
        "The resumed `approve` node runs again and re-sends its create request (replayed by"
        " the server): one extra HTTP round trip inside 'webhook→resume_from_event returned'.",
        "The server, the graph, the resumer and the answering client share this machine;"
        " the graph, resumer and client share one event loop.",
        "what-if rows: the same runs, but the resumer's replies carry `connection: close`, so"
        " the server's webhook client opens a new connection for every delivery instead of"
        " reusing the kept-alive one.",
    ]
    report(rows, args.json, notes)


if __name__ == "__main__":
    main()
