"""A judge for a task's verifier config: its provider's client, keyed and pointed.

Judges are built once per provider, key and endpoint and reused across tasks; the SDK of a
provider is imported the first time a task needs it.
"""

from __future__ import annotations

import asyncio

from awaithumans.server.services.verifier_gate import PROVIDERS, Blocked, credentials
from awaithumans.server.settings import VerifierSettings
from awaithumans.server.verifiers.providers import Judge
from awaithumans.server.verifiers.verdict import ProviderError
from awaithumans.verifiers import VerifierConfig


def model_for(config: VerifierConfig) -> str:
    """The model (for Azure: the deployment) a config's calls go to."""
    if config.provider == "azure_openai" and config.deployment:
        return config.deployment
    return config.model or PROVIDERS[config.provider].default_model


class Judges:
    """The judges this server has built, by provider, key and endpoint."""

    def __init__(self, settings: VerifierSettings) -> None:
        self._settings = settings
        self._built: dict[tuple[str, str, str | None], Judge] = {}
        self._building = asyncio.Lock()

    async def for_config(self, config: VerifierConfig) -> Judge:
        """The judge for ``config``.

        Raises:
            ProviderError: The SDK, the key or (Azure) the endpoint is missing: checked at
                submit, so the server's environment changed since (fixed by a restart).
        """
        found = credentials(config)
        if isinstance(found, Blocked):
            raise ProviderError(found.message)
        cache_key = (config.provider, found.key, found.endpoint)
        judge = self._built.get(cache_key)
        if judge is not None:
            return judge
        async with self._building:
            judge = self._built.get(cache_key)
            if judge is None:
                # The first judge of a provider imports its SDK: seconds of module code for
                # some (anthropic's took 4.4 s on a busy machine), which on the event loop
                # would hold every request and long-poll of the server meanwhile.
                judge = await asyncio.to_thread(
                    self._build, config.provider, found.key, found.endpoint
                )
                self._built[cache_key] = judge
        return judge

    def _build(self, provider: str, key: str, endpoint: str | None) -> Judge:
        timeout = self._settings.timeout_seconds
        if provider == "claude":
            from awaithumans.server.verifiers.providers.claude import ClaudeJudge

            return ClaudeJudge(key, timeout)
        if provider == "gemini":
            from awaithumans.server.verifiers.providers.gemini import GeminiJudge

            return GeminiJudge(key, timeout, self._settings.gemini_base_url)
        from awaithumans.server.verifiers.providers.openai import OpenAIJudge

        if provider == "azure_openai":
            assert endpoint is not None
            return OpenAIJudge.azure(key, endpoint, timeout)
        return OpenAIJudge.openai(key, timeout)

    async def aclose(self) -> None:
        built, self._built = list(self._built.values()), {}
        for judge in built:
            await judge.aclose()
