"""Claude through the official ``anthropic`` SDK: a forced call of the verdict tool.

The SDK reads ``ANTHROPIC_BASE_URL`` itself (proxies, gateways, the tests' stand-in).
"""

from __future__ import annotations

from typing import Any

from anthropic import AnthropicError, AsyncAnthropic

from awaithumans.server.verifiers.prompt import Prompt
from awaithumans.server.verifiers.providers import short
from awaithumans.server.verifiers.verdict import (
    VERDICT_NAME,
    VERDICT_SCHEMA,
    ProviderError,
    Usage,
    Verdict,
    verdict_from,
)

_MAX_TOKENS = 1024


class ClaudeJudge:
    def __init__(self, api_key: str, timeout: float) -> None:
        # Retries are ours (the outbox's backoff), so a down provider never blocks a slot.
        self._client = AsyncAnthropic(api_key=api_key, timeout=timeout, max_retries=0)

    async def judge(self, prompt: Prompt, model: str) -> Verdict:
        tool: Any = {
            "name": VERDICT_NAME,
            "description": "Record your verdict on the answer.",
            "input_schema": VERDICT_SCHEMA,
        }
        try:
            message = await self._client.messages.create(
                model=model,
                max_tokens=_MAX_TOKENS,
                system=prompt.system,
                messages=[{"role": "user", "content": prompt.user}],
                tools=[tool],
                tool_choice={"type": "tool", "name": VERDICT_NAME},
            )
        except AnthropicError as exc:
            raise ProviderError(short(exc)) from exc
        usage = Usage(message.usage.input_tokens, message.usage.output_tokens)
        for block in message.content:
            if block.type == "tool_use" and block.name == VERDICT_NAME:
                return verdict_from(block.input, model=message.model, usage=usage)
        raise ProviderError(f"the model did not call {VERDICT_NAME}")

    async def aclose(self) -> None:
        await self._client.close()
