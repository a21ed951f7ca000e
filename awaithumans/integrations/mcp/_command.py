"""``awaithumans mcp``: serve ``ask_human`` and ``get_answer`` over stdio or streamable HTTP.

stdio is what desktop clients launch (the command in their config); HTTP serves clients
that connect to a URL. Either way the server acts as an agent towards awaithumans, with
the credential the SDK would find: ``AWAITHUMANS_URL`` / ``AWAITHUMANS_API_KEY``, else
the running dev server's file. Nothing but the protocol may go to stdout under stdio, so
every line for people goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

from awaithumans.integrations.mcp._questions import (
    DEFAULT_WAIT_SECONDS,
    MAX_WAIT_SECONDS,
    WAIT_ENV,
    Desk,
    wait_budget,
)
from awaithumans.integrations.mcp._server import build_server

DEFAULT_PORT = 3004
MCP_PATH = "/mcp"


def build_parser(prog: str = "awaithumans mcp") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve the tools ask_human and get_answer to MCP clients (Claude Desktop,"
        " Claude Code, ...), asking people through the awaithumans server that AWAITHUMANS_URL"
        " names (else the running `awaithumans dev`).",
    )
    parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio for a client that launches this command, http (streamable HTTP, at"
        f" {MCP_PATH}) for clients that connect to a URL (default: stdio)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="with --transport http: the address to listen on (default: 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"with --transport http: the port (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="the longest one tool call waits for a person before it returns 'waiting'"
        f" (0-{MAX_WAIT_SECONDS:.0f}; default: {WAIT_ENV}, else {DEFAULT_WAIT_SECONDS:g})",
    )
    return parser


def main(argv: list[str] | None = None, *, prog: str = "awaithumans mcp") -> int:
    """Run the MCP server until the client closes stdin (stdio) or SIGINT/SIGTERM (http)."""
    args = build_parser(prog).parse_args(argv)
    try:
        budget = wait_budget(args.wait_seconds)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    server = build_server(Desk(wait_seconds=budget))
    if args.transport == "stdio":
        try:
            server.run("stdio")
        except KeyboardInterrupt:
            return 130
        return 0
    return asyncio.run(_serve_http(server, args.host, args.port, prog))


async def _serve_http(server: MCPServer, host: str, port: int, prog: str) -> int:
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    http = uvicorn.Server(config)

    async def announce() -> None:
        while not http.started:
            if http.should_exit:
                return
            await asyncio.sleep(0.05)
        shown = f"[{host}]" if ":" in host else host
        print(f"✓ MCP server at http://{shown}:{port}{MCP_PATH}", file=sys.stderr, flush=True)

    told = asyncio.create_task(announce())
    try:
        await http.serve()
    finally:
        told.cancel()
    if not http.started:
        print(f"{prog}: could not listen on {host}:{port}", file=sys.stderr)
        return 1
    return 0
