"""Verifiers: a model checks each human answer on the server before the task completes.

These are client-side config builders; they import no provider SDK and need no API key::

    from awaithumans.verifiers.claude import claude_verifier

    verifier = claude_verifier(instructions="Approve only if the amount matches the invoice.")
"""

from awaithumans.verifiers._config import VerifierConfig
from awaithumans.verifiers.azure_openai import azure_openai_verifier
from awaithumans.verifiers.claude import claude_verifier
from awaithumans.verifiers.gemini import gemini_verifier
from awaithumans.verifiers.openai import openai_verifier

__all__ = [
    "VerifierConfig",
    "azure_openai_verifier",
    "claude_verifier",
    "gemini_verifier",
    "openai_verifier",
]
