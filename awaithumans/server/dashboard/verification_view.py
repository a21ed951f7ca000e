"""What the task page says about a task's verifier: the answer under check, the verdict,
and a provider's trouble while it lasts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from awaithumans.core._forms import FormDefinition
from awaithumans.core._wire import TaskStatus
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.principals import Principal
from awaithumans.server.security import Sealer
from awaithumans.server.services.display import AnswerItem, answer_items
from awaithumans.server.services.lifecycle import ANSWERABLE
from awaithumans.server.services.verification import Submission
from awaithumans.server.services.verifier_gate import PROVIDERS, config_of, refuse_submit

S = TaskStatus


@dataclass(frozen=True, slots=True)
class VerificationView:
    provider: str
    attempt: int
    max_attempts: int
    #: The last verdict's reason (shown above the form after a rejection).
    reason: str | None
    checking: bool
    rejected: bool
    #: The provider's trouble while the answer waits: code, message, tries.
    error: dict[str, Any] | None
    #: Operators may ask for the next try now, while the provider fails.
    can_retry: bool
    #: The task takes an answer in the person's own words.
    free_text: bool
    #: Why this server cannot run the verifier (answers are refused until fixed).
    blocked: str | None
    #: The answer under check (or last rejected), as items, or as the text it was.
    submitted_items: list[AnswerItem] | None
    submitted_text: str | None


def verification_view(
    sealer: Sealer, task: TaskRecord, form: FormDefinition, who: Principal
) -> tuple[VerificationView | None, Submission | None]:
    """The page's view of the task's verification, and the last answer given, if any."""
    if task.verifier_config is None:
        return None, None
    config = config_of(task.verifier_config)
    submission = Submission.opened(sealer, task)
    blocked = refuse_submit(config) if task.status in ANSWERABLE else None
    checking = task.status is S.SUBMITTED
    view = VerificationView(
        provider=PROVIDERS[config.provider].label,
        attempt=task.verification_attempt,
        max_attempts=config.max_attempts,
        reason=task.verification_reason,
        checking=checking,
        rejected=task.status is S.REJECTED,
        error=task.verification_error if checking else None,
        can_retry=who.is_operator and checking and task.verification_error is not None,
        free_text=config.parse_natural_language,
        blocked=blocked.message if blocked else None,
        submitted_items=(
            answer_items(form, submission.response)
            if submission is not None and submission.response is not None
            else None
        ),
        submitted_text=submission.text if submission is not None else None,
    )
    return view, submission
