"""OpenAI as the judge of a human's answer.

Only a config is built here; the server makes the calls, so this module imports no provider
SDK and the caller needs no API key. The server needs ``awaithumans[verifier-openai]``.
"""

from __future__ import annotations

from awaithumans.verifiers._config import DEFAULT_MAX_ATTEMPTS, VerifierConfig


def openai_verifier(
    *,
    instructions: str,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    model: str | None = None,
    api_key_env: str | None = None,
    parse_natural_language: bool = True,
) -> VerifierConfig:
    """Describe a verifier that asks OpenAI whether a human's answer is acceptable.

    Args:
        instructions: What an acceptable answer looks like, in plain language.
        max_attempts: Answers the human may give before the task ends as
            ``verification_exhausted`` (1 to 10).
        model: The OpenAI model to use; None lets the server pick its default.
        api_key_env: The server's environment variable holding the API key; defaults to
            ``OPENAI_API_KEY``.
        parse_natural_language: Let the verifier turn a free-text reply from Slack or
            email into the response schema before checking it.

    Returns:
        The config to pass as ``verifier=`` to ``await_human``.

    Raises:
        pydantic.ValidationError: An argument is out of range, e.g. empty instructions.

    Example:
        >>> v = openai_verifier(instructions="The refund reason must name the order.")
        >>> v.api_key_env
        'OPENAI_API_KEY'
    """
    return VerifierConfig(
        provider="openai",
        instructions=instructions,
        max_attempts=max_attempts,
        model=model,
        api_key_env=api_key_env,
        parse_natural_language=parse_natural_language,
    )
