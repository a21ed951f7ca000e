"""OpenAI, and Azure OpenAI, through the official ``openai`` SDK: strict JSON output.

Chat Completions with a strict ``json_schema`` response format, which both services take;
Azure names a deployment where OpenAI names a model. The SDK reads ``OPENAI_BASE_URL``
itself; Azure's endpoint comes from the config's ``endpoint_env``
(``AZURE_OPENAI_ENDPOINT``) and its API version from ``OPENAI_API_VERSION``.
"""

from __future__ import annotations

import os
from typing import Any

from openai import AsyncAzureOpenAI, AsyncOpenAI, OpenAIError

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

# Azure's generally available API version this code was written against; OPENAI_API_VERSION
# overrides it.
AZURE_API_VERSION = "2024-10-21"

_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {"name": VERDICT_NAME, "schema": VERDICT_SCHEMA, "strict": True},
}


class OpenAIJudge:
    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    @classmethod
    def openai(cls, api_key: str, timeout: float) -> OpenAIJudge:
        return cls(AsyncOpenAI(api_key=api_key, timeout=timeout, max_retries=0))

    @classmethod
    def azure(cls, api_key: str, endpoint: str, timeout: float) -> OpenAIJudge:
        version = os.environ.get("OPENAI_API_VERSION") or AZURE_API_VERSION
        client = AsyncAzureOpenAI(
            api_key=api_key,
            azure_endpoint=endpoint,
            api_version=version,
            timeout=timeout,
            max_retries=0,
        )
        return cls(client)

    async def judge(self, prompt: Prompt, model: str) -> Verdict:
        try:
            completion = await self._client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": prompt.user},
                ],
                response_format=_FORMAT,
            )
        except OpenAIError as exc:
            raise ProviderError(short(exc)) from exc
        if not completion.choices:
            raise ProviderError("the model returned no choice")
        message = completion.choices[0].message
        if message.refusal:
            raise ProviderError(f"the model refused: {message.refusal}")
        usage = completion.usage
        counted = Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage()
        return verdict_from(message.content or "", model=completion.model, usage=counted)

    async def aclose(self) -> None:
        await self._client.close()
