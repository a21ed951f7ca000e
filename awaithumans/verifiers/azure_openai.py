"""Azure OpenAI as the judge of a human's answer.

Only a config is built here; the server makes the calls, so this module imports no provider
SDK and the caller needs no API key. The server needs ``awaithumans[verifier-azure]``.
"""

from __future__ import annotations

from awaithumans.verifiers._config import DEFAULT_MAX_ATTEMPTS, VerifierConfig


def azure_openai_verifier(
    *,
    instructions: str,
    deployment: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    model: str | None = None,
    api_key_env: str | None = None,
    endpoint_env: str | None = None,
    parse_natural_language: bool = True,
) -> VerifierConfig:
    """Describe a verifier that asks an Azure OpenAI deployment whether an answer is acceptable.

    Args:
        instructions: What an acceptable answer looks like, in plain language.
        deployment: The Azure deployment to call; None lets the server choose.
        max_attempts: Answers the human may give before the task ends as
            ``verification_exhausted`` (1 to 10).
        model: The model behind the deployment; None lets the server pick its default.
        api_key_env: The server's environment variable holding the API key; defaults to
            ``AZURE_OPENAI_API_KEY``.
        endpoint_env: The server's environment variable holding the resource's endpoint
            URL; defaults to ``AZURE_OPENAI_ENDPOINT``.
        parse_natural_language: Let the verifier turn a free-text reply from Slack or
            email into the response schema before checking it.

    Returns:
        The config to pass as ``verifier=`` to ``await_human``.

    Raises:
        pydantic.ValidationError: An argument is out of range, e.g. empty instructions.

    Example:
        >>> v = azure_openai_verifier(instructions="Totals must match.", deployment="gpt-4o")
        >>> v.endpoint_env
        'AZURE_OPENAI_ENDPOINT'
    """
    return VerifierConfig(
        provider="azure_openai",
        instructions=instructions,
        max_attempts=max_attempts,
        model=model,
        api_key_env=api_key_env,
        parse_natural_language=parse_natural_language,
        endpoint_env=endpoint_env,
        deployment=deployment,
    )
