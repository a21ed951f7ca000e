"""One module per model provider, each behind the same :class:`Judge`.

A judge holds one provider client (built once per key and endpoint, then reused: building an
HTTP client with its TLS context costs milliseconds of CPU) and turns a prompt into a
:class:`~awaithumans.server.verifiers.verdict.Verdict` through the provider's official SDK,
forcing the verdict shape (a forced tool call, or strict JSON output). Every failure
becomes a ``ProviderError``. The SDKs are imported only when a judge is built, so the
server runs without them until a task asks for one.
"""

from __future__ import annotations

from typing import Protocol

from awaithumans.server.verifiers.prompt import Prompt
from awaithumans.server.verifiers.verdict import Verdict


class Judge(Protocol):
    """A provider client, ready to judge prompts with a model."""

    async def judge(self, prompt: Prompt, model: str) -> Verdict: ...

    async def aclose(self) -> None: ...


def short(exc: BaseException, limit: int = 300) -> str:
    """An SDK error in one line, for the task page: its type and message, capped."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"
