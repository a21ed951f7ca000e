"""Gemini through the official ``google-genai`` SDK: JSON output under the verdict schema.

``AWAITHUMANS_GEMINI_BASE_URL`` points the client elsewhere (proxies, the tests' stand-in).
"""

from __future__ import annotations

from google import genai
from google.genai import errors, types

from awaithumans.server.verifiers.prompt import Prompt
from awaithumans.server.verifiers.providers import short
from awaithumans.server.verifiers.verdict import (
    VERDICT_SCHEMA,
    ProviderError,
    Usage,
    Verdict,
    verdict_from,
)


class GeminiJudge:
    def __init__(self, api_key: str, timeout: float, base_url: str | None = None) -> None:
        options = types.HttpOptions(
            base_url=base_url,
            timeout=int(timeout * 1000),
            # Retries are ours (the outbox's backoff).
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    async def judge(self, prompt: Prompt, model: str) -> Verdict:
        config = types.GenerateContentConfig(
            system_instruction=prompt.system,
            response_mime_type="application/json",
            response_json_schema=VERDICT_SCHEMA,
        )
        try:
            reply = await self._client.aio.models.generate_content(
                model=model, contents=prompt.user, config=config
            )
        except (errors.APIError, OSError) as exc:
            raise ProviderError(short(exc)) from exc
        meta = reply.usage_metadata
        usage = Usage(meta.prompt_token_count, meta.candidates_token_count) if meta else Usage()
        text = reply.text
        if not text:
            raise ProviderError("the model returned no text")
        return verdict_from(text, model=reply.model_version or model, usage=usage)

    async def aclose(self) -> None:
        await self._client.aio.aclose()
