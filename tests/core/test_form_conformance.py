"""The shared form fixture (``tests/conformance/forms.json``) holds for the Python rules.

The TypeScript SDK checks the same file (``sdk/typescript/test/forms.test.ts``), so a form
rule changed on one side only fails one of the two suites.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from awaithumans.core._forms import form_from_json_schema
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
