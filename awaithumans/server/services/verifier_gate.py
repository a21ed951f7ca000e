"""Whether a task's verifier can run on this server, asked before anything is stored.

At task creation: the config may name only allowed variables for its key and endpoint (an
agent must not make the server read, and send to a model, any secret it likes). At every
submit: the provider's SDK is installed and its key is set, or the answer is refused with
a code that names what to install or export; an answer that cannot be checked never lands.
``awaithumans doctor`` and the settings page list the same facts.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from awaithumans.core._codes import ErrorCode
from awaithumans.server.settings import VerifierSettings
from awaithumans.verifiers import VerifierConfig
from awaithumans.verifiers._config import DEFAULT_API_KEY_ENV, DEFAULT_AZURE_ENDPOINT_ENV


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    label: str
    #: The module the official SDK installs, and the extra that installs it.
    module: str
    extra: str
    #: The model a config without ``model`` gets: a current, mid-priced one that follows a
    #: forced tool call or a strict schema reliably. Azure uses the config's deployment.
    default_model: str


PROVIDERS: dict[str, ProviderInfo] = {
    p.name: p
    for p in (
        ProviderInfo(
            "claude", "Claude (Anthropic)", "anthropic", "verifier-claude", "claude-sonnet-5-5"
        ),
        ProviderInfo("openai", "OpenAI", "openai", "verifier-openai", "gpt-5.5"),
        ProviderInfo(
            "gemini", "Gemini (Google)", "google.genai", "verifier-gemini", "gemini-3.8-flash"
        ),
        ProviderInfo("azure_openai", "Azure OpenAI", "openai", "verifier-azure", "gpt-5.5"),
    )
}


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why a verifier cannot run: a stable code and a sentence saying what to do."""

    code: ErrorCode
    message: str


def read_env(name: str) -> str | None:
    """A provider key or endpoint from the server's environment (the one place that reads
    them: they belong to the providers' own variables, not to ``AWAITHUMANS_*``)."""
    value = os.environ.get(name)
    return value if value else None


@cache
def sdk_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing (google, for google.genai)
        return False


def config_of(stored: dict[str, Any]) -> VerifierConfig:
    """A task's stored verifier config (validated when the task was created)."""
    return VerifierConfig.model_validate(stored)


def refuse_config(config: VerifierConfig, settings: VerifierSettings) -> Blocked | None:
    """At task creation: the variables the config names must be allowed on this server."""
    allowed = settings.allowed_key_envs
    for field, name in (("api_key_env", config.api_key_env), ("endpoint_env", config.endpoint_env)):
        if name is not None and name not in allowed:
            return Blocked(
                ErrorCode.VERIFIER_KEY_ENV_NOT_ALLOWED,
                f"verifier_config.{field} names {name!r}, which this server does not allow;"
                " use the provider's usual variable, or have the operator add it to"
                " AWAITHUMANS_VERIFIER_KEY_ENVS.",
            )
    return None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a provider's client needs from the server's environment."""

    key: str
    #: Azure OpenAI's endpoint; None for the others.
    endpoint: str | None = None


def credentials(config: VerifierConfig) -> Credentials | Blocked:
    """The key (and endpoint) ``config`` names, or why its verifier cannot run here."""
    info = PROVIDERS[config.provider]
    if not sdk_installed(info.module):
        return Blocked(
            ErrorCode.VERIFIER_UNAVAILABLE,
            f"This task's verifier needs {info.label}'s SDK on the server:"
            f' pip install "awaithumans[{info.extra}]" where the server runs, then restart it.',
        )
    key_env = config.api_key_env or DEFAULT_API_KEY_ENV[config.provider]
    key = read_env(key_env)
    if key is None:
        return Blocked(
            ErrorCode.VERIFIER_API_KEY_MISSING,
            f"This task's verifier needs {key_env} in the server's environment"
            " (the server makes the model call; the agent never holds the key).",
        )
    if config.provider != "azure_openai":
        return Credentials(key)
    endpoint_env = config.endpoint_env or DEFAULT_AZURE_ENDPOINT_ENV
    endpoint = read_env(endpoint_env)
    if endpoint is None:
        return Blocked(
            ErrorCode.VERIFIER_API_KEY_MISSING,
            f"This task's verifier needs {endpoint_env} (the Azure OpenAI endpoint) in"
            " the server's environment.",
        )
    return Credentials(key, endpoint)


def refuse_submit(config: VerifierConfig) -> Blocked | None:
    """At submit: the provider's SDK is installed and its key (and endpoint) are set."""
    found = credentials(config)
    return found if isinstance(found, Blocked) else None


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """What the settings page and ``awaithumans doctor`` say about one provider."""

    info: ProviderInfo
    sdk_installed: bool
    key_env: str
    key_set: bool

    @property
    def usable(self) -> bool:
        return self.sdk_installed and self.key_set


def provider_statuses() -> list[ProviderStatus]:
    """Each provider with its usual key variable: installed? keyed?"""
    return [
        ProviderStatus(
            info,
            sdk_installed(info.module),
            DEFAULT_API_KEY_ENV[name],
            read_env(DEFAULT_API_KEY_ENV[name]) is not None,
        )
        for name, info in PROVIDERS.items()
    ]
