"""The shared fixtures (``tests/conformance/``) hold for the Python side: forms and wire values.

The TypeScript SDK checks the same file (``sdk/typescript/test/forms.test.ts``), so a form
rule changed on one side only fails one of the two suites.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from awaithumans.core._forms import form_from_json_schema
from awaithumans.core._wire import derive_idempotency_key
from tests.conformance import make_wire as wire
from tests.conformance.make_forms import FIXTURE, build_cases, render

CASES: list[dict[str, Any]] = json.loads(Path(FIXTURE).read_text(encoding="utf-8"))


def test_fixture_is_what_the_script_writes() -> None:
    # A rule or case changed without running make_forms.py: the contract would be stale.
    assert Path(FIXTURE).read_text(encoding="utf-8") == render(build_cases())


def test_fixture_covers_both_sources() -> None:
    sources = {case["source"] for case in CASES}
    assert sources == {"pydantic", "json_schema"}
    assert len({case["name"] for case in CASES}) == len(CASES)
    assert sum(len(case["form"]["fields"]) for case in CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_form_from_json_schema_matches_fixture(case: dict[str, Any]) -> None:
    form = form_from_json_schema(case["json_schema"]).model_dump(mode="json", exclude_none=True)
    assert form == case["form"]


# -- the wire values both SDKs compute (tests/conformance/wire.json) ---------------------

WIRE: dict[str, Any] = json.loads(Path(wire.FIXTURE).read_text(encoding="utf-8"))


def test_wire_fixture_is_what_the_script_writes() -> None:
    assert Path(wire.FIXTURE).read_text(encoding="utf-8") == wire.render(wire.build())


@pytest.mark.parametrize("case", WIRE["idempotency_keys"], ids=lambda case: case["task"])
def test_idempotency_key_matches_fixture(case: dict[str, Any]) -> None:
    assert derive_idempotency_key(case["task"], case["payload"]) == case["key"]
