"""Server-side verifiers: a model checks each human answer before the task completes.

The agent only declares the verifier (``awaithumans.verifiers``); the server holds the
provider keys and makes the calls. :mod:`.runner` is the outbox handler that judges
answers under check; :mod:`.prompt` builds what the model reads; :mod:`.verdict` is the
shape it must answer in; :mod:`.providers` has one module per provider's official SDK.
Whether a task's verifier can run at all is asked earlier, in
``services/verifier_gate.py``, before an answer is stored.
"""

from __future__ import annotations

from awaithumans.server.verifiers.runner import VerificationRunner

__all__ = ["VerificationRunner"]
