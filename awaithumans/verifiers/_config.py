"""The verifier config: which model judges a human's answer, and how.

A verifier runs on the awaithumans server, never in the caller's process: the SDK only
describes it. That keeps provider SDKs and API keys out of agents and workflows; the config
names the server's environment variable that holds the key, never the key itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Provider: TypeAlias = Literal["claude", "openai", "gemini", "azure_openai"]

DEFAULT_MAX_ATTEMPTS = 3
MAX_MAX_ATTEMPTS = 10

DEFAULT_API_KEY_ENV: Mapping[str, str] = MappingProxyType(
    {
        "claude": "ANTHROPIC_API_KEY",
        "openai": "OPENAI_API_KEY",
        "gemini": "GEMINI_API_KEY",
        "azure_openai": "AZURE_OPENAI_API_KEY",
    }
)
DEFAULT_AZURE_ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"

# POSIX-style variable names. This also catches the costly mistake of passing the key itself
# (keys contain '-' or start with a prefix like "sk-"), which would put it on the wire.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AZURE_ONLY = ("endpoint_env", "deployment")


class VerifierConfig(BaseModel):
    """A server-side verifier, as the SDK sends it in ``verifier_config``.

    Build one with a provider's builder, e.g. :func:`awaithumans.verifiers.claude_verifier`.

    Attributes:
        provider: Which model provider the server calls.
        instructions: What the verifier checks the human's answer for.
        max_attempts: How many answers the human may give before the task ends as
            ``verification_exhausted``.
        model: The provider's model name; None lets the server use its default.
        api_key_env: The server's environment variable that holds the API key; filled with
            the provider's usual name when not given.
        parse_natural_language: Whether the verifier may turn a free-text reply (from Slack
            or email) into the response schema before checking it.
        endpoint_env: Azure only: the server's environment variable holding the endpoint URL.
        deployment: Azure only: the deployment name; None lets the server choose.
    """

    # hide_input_in_errors: a key pasted into api_key_env by mistake must not be echoed into
    # the logs by the very error that rejects it.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    provider: Provider
    instructions: str = Field(min_length=1)
    # strict: a bool or a float such as 2.5 is a bug in the caller, not a count to coerce.
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=MAX_MAX_ATTEMPTS, strict=True)
    model: str | None = Field(default=None, min_length=1)
    api_key_env: str | None = None
    parse_natural_language: bool = Field(default=True, strict=True)
    endpoint_env: str | None = None
    deployment: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _fill_provider_defaults(cls, data: Any) -> Any:
        # Filled in before validation so that a dumped config is self-describing: the server
        # reads the variable named on the wire and needs no table of its own defaults.
        if not isinstance(data, dict):
            return data
        provider = data.get("provider")
        if not isinstance(provider, str) or provider not in DEFAULT_API_KEY_ENV:
            return data  # field validation reports the bad provider
        filled = dict(data)
        if filled.get("api_key_env") is None:
            filled["api_key_env"] = DEFAULT_API_KEY_ENV[provider]
        if provider == "azure_openai" and filled.get("endpoint_env") is None:
            filled["endpoint_env"] = DEFAULT_AZURE_ENDPOINT_ENV
        return filled

    @field_validator("instructions")
    @classmethod
    def _instructions_say_something(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("instructions must say what to check, not only whitespace")
        return value

    @field_validator("api_key_env", "endpoint_env")
    @classmethod
    def _is_env_var_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "not an environment variable name; pass the NAME of the server's variable "
                "(e.g. 'ANTHROPIC_API_KEY'), never the key itself"
            )
        return value

    @model_validator(mode="after")
    def _azure_fields_only_for_azure(self) -> VerifierConfig:
        if self.provider != "azure_openai":
            given = [name for name in _AZURE_ONLY if getattr(self, name) is not None]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise ValueError(f"{' and '.join(given)} {verb} only to provider 'azure_openai'")
        return self
