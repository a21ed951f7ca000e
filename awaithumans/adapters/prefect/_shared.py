"""What the flow side and the relay side of the Prefect adapter agree on."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from prefect.input import RunInput
from pydantic import BaseModel, Field, create_model

Status = Literal["completed", "cancelled", "timed_out", "verification_exhausted"]
AnsweredIn = Literal["awaithumans", "prefect"]


@cache
def decision_model(response_schema: type[BaseModel]) -> type[RunInput]:
    """The run input a paused flow waits for: a task's outcome, around the typed answer.

    Every outcome must fit, so the human's answer sits in ``response`` next to ``status``:
    a cancelled or timed-out task resumes the run too, and the flow raises the matching
    error. Prefect's UI shows this model as the run's input; there a person can also answer
    by filling in ``response`` (``status`` defaults to ``completed``).
    """
    name = f"{response_schema.__name__}Input"
    answer: Any = response_schema | None
    model: type[RunInput] = create_model(
        name,
        __base__=RunInput,
        task_id=(str, Field(description="The awaithumans task this answers.")),
        status=(Status, Field(default="completed", description="The task's outcome.")),
        response=(answer, Field(default=None, description="The answer; when completed.")),
        verification_attempt=(int, Field(default=0, ge=0)),
        answered_in=(
            AnsweredIn,
            Field(
                default="prefect",
                description="Where the answer was given: the relay sends 'awaithumans'.",
            ),
        ),
    )
    return model


def run_input(
    task_id: str, status: str, response: dict[str, Any] | None, verification_attempt: int
) -> dict[str, Any]:
    """The run input that hands a task's outcome to the paused run (see decision_model)."""
    return {
        "task_id": task_id,
        "status": status,
        "response": response,
        "verification_attempt": verification_attempt,
        "answered_in": "awaithumans",
    }


def run_input_from_event(data: dict[str, Any]) -> dict[str, Any]:
    """The run input for a webhook's ``data`` (only the fields the flow needs)."""
    return run_input(
        data["task_id"],
        data["status"],
        data.get("response"),
        int(data.get("verification_attempt") or 0),
    )


def pause_key(call_key: str) -> str:
    return f"awaithumans-{call_key}"
