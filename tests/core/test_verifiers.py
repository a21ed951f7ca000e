"""Tests for the client-side verifier config builders."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

import awaithumans.verifiers
from awaithumans.verifiers import (
    VerifierConfig,
    azure_openai_verifier,
    claude_verifier,
    gemini_verifier,
    openai_verifier,
)

Builder = Callable[..., VerifierConfig]

BUILDERS: list[tuple[Builder, str, str]] = [
    (claude_verifier, "claude", "ANTHROPIC_API_KEY"),
    (openai_verifier, "openai", "OPENAI_API_KEY"),
    (gemini_verifier, "gemini", "GEMINI_API_KEY"),
    (azure_openai_verifier, "azure_openai", "AZURE_OPENAI_API_KEY"),
]
builders = pytest.mark.parametrize(
    ("build", "provider", "key_env"), BUILDERS, ids=[provider for _, provider, _ in BUILDERS]
)


@builders
def test_builder_fills_the_provider_defaults(build: Builder, provider: str, key_env: str) -> None:
    config = build(instructions="The amount must match the invoice.")

    assert config.provider == provider
    assert config.instructions == "The amount must match the invoice."
    assert config.max_attempts == 3
    assert config.model is None
    assert config.api_key_env == key_env
    assert config.parse_natural_language is True


@builders
def test_builder_passes_every_argument_through(build: Builder, provider: str, key_env: str) -> None:
    config = build(
        instructions="Check the total.",
        max_attempts=5,
        model="some-model",
        api_key_env="MY_KEY",
        parse_natural_language=False,
    )

    assert (config.max_attempts, config.model, config.api_key_env) == (5, "some-model", "MY_KEY")
    assert config.parse_natural_language is False


def test_azure_builder_carries_deployment_and_endpoint() -> None:
    default = azure_openai_verifier(instructions="x")
    custom = azure_openai_verifier(
        instructions="x", deployment="gpt-4o-prod", endpoint_env="AZ_ENDPOINT"
    )

    assert (default.deployment, default.endpoint_env) == (None, "AZURE_OPENAI_ENDPOINT")
    assert (custom.deployment, custom.endpoint_env) == ("gpt-4o-prod", "AZ_ENDPOINT")


@pytest.mark.parametrize("build", [claude_verifier, openai_verifier, gemini_verifier])
def test_non_azure_configs_have_no_azure_fields(build: Builder) -> None:
    config = build(instructions="x")

    assert (config.endpoint_env, config.deployment) == (None, None)


@pytest.mark.parametrize("field", ["deployment", "endpoint_env"])
def test_azure_fields_are_refused_for_other_providers(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} applies only to provider"):
        VerifierConfig.model_validate({"provider": "openai", "instructions": "x", field: "X"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instructions": ""}, "at least 1 character"),
        ({"instructions": "  \n"}, "not only whitespace"),
        ({"instructions": "x", "max_attempts": 0}, "greater than or equal to 1"),
        ({"instructions": "x", "max_attempts": -1}, "greater than or equal to 1"),
        ({"instructions": "x", "max_attempts": 11}, "less than or equal to 10"),
        ({"instructions": "x", "max_attempts": True}, "valid integer"),
        ({"instructions": "x", "max_attempts": 2.5}, "valid integer"),
        ({"instructions": "x", "model": ""}, "at least 1 character"),
        ({"instructions": "x", "api_key_env": "sk-ant-api03-abc"}, "never the key itself"),
        ({"instructions": "x", "api_key_env": "1KEY"}, "not an environment variable name"),
        ({"instructions": "x", "api_key_env": ""}, "not an environment variable name"),
    ],
)
@builders
def test_builder_rejects_bad_arguments(
    build: Builder, provider: str, key_env: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        build(**kwargs)


def test_max_attempts_bounds_are_inclusive() -> None:
    assert claude_verifier(instructions="x", max_attempts=1).max_attempts == 1
    assert claude_verifier(instructions="x", max_attempts=10).max_attempts == 10


def test_a_pasted_key_is_not_echoed_in_the_error() -> None:
    secret = "sk-ant-api03-THIS-IS-SECRET"

    with pytest.raises(ValidationError) as caught:
        claude_verifier(instructions="x", api_key_env=secret)

    assert "SECRET" not in str(caught.value)


def test_builders_take_keyword_arguments_only() -> None:
    with pytest.raises(TypeError):
        claude_verifier("Check it.")  # type: ignore[call-arg]


def test_config_is_frozen_and_closed() -> None:
    config = claude_verifier(instructions="x")

    with pytest.raises(ValidationError, match="frozen"):
        config.max_attempts = 5  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        VerifierConfig.model_validate({"provider": "claude", "instructions": "x", "api_key": "k"})


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(ValidationError, match="provider"):
        VerifierConfig.model_validate({"provider": "llama", "instructions": "x"})


@builders
def test_wire_form_round_trips(build: Builder, provider: str, key_env: str) -> None:
    config = build(instructions="Reject refunds over $500 with no reason.", max_attempts=4)

    wire = config.model_dump(mode="json")

    # The SDK sends this dict as verifier_config; it must survive JSON and validate back.
    assert VerifierConfig.model_validate(json.loads(json.dumps(wire))) == config
    assert VerifierConfig.model_validate_json(json.dumps(wire)) == config
    assert wire["provider"] == provider
    assert wire["api_key_env"] == key_env


def test_wire_form_is_exactly_the_documented_fields() -> None:
    wire = azure_openai_verifier(instructions="x", deployment="d").model_dump(mode="json")

    assert wire == {
        "provider": "azure_openai",
        "instructions": "x",
        "max_attempts": 3,
        "model": None,
        "api_key_env": "AZURE_OPENAI_API_KEY",
        "parse_natural_language": True,
        "endpoint_env": "AZURE_OPENAI_ENDPOINT",
        "deployment": "d",
    }


def test_package_exports_are_sorted_and_complete() -> None:
    exported = awaithumans.verifiers.__all__

    assert exported == sorted(exported)
    assert set(exported) == {
        "VerifierConfig",
        "azure_openai_verifier",
        "claude_verifier",
        "gemini_verifier",
        "openai_verifier",
    }


_PROVIDER_SDKS = ("anthropic", "openai", "google")


@pytest.mark.parametrize(
    "module",
    [
        "awaithumans.verifiers",
        "awaithumans.verifiers.claude",
        "awaithumans.verifiers.openai",
        "awaithumans.verifiers.gemini",
        "awaithumans.verifiers.azure_openai",
    ],
)
def test_importing_a_verifier_imports_no_provider_sdk(module: str) -> None:
    # A fresh interpreter: this test process may already have imported any of them.
    script = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"sdks = {_PROVIDER_SDKS!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in sdks)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(result.stdout) == []
