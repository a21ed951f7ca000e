"""Edge inputs: JSON at and past what the server takes, each refused with a clear 4xx.

Deep nesting, bodies at the size limit and one byte over, huge arrays, odd Unicode in strings
and keys (unpaired surrogates, NUL, overlong and invalid UTF-8, UTF-16 bodies), duplicate
keys, numbers no double holds, and bodies that are not JSON (and, for the dashboard's own
JSON fields, numbers and text no answer can hold). Each refusal is the one error
shape with a stable code, leaks nothing and changes nothing (``world`` before and after, as
in ``test_bad_input.py``); what the server takes (odd but valid Unicode, -0, huge integers)
comes back exactly as sent. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from awaithumans.core._forms import extract_form
from tests._app_fixtures import make_settings, running_app
from tests.dashboard.test_task_page import create_task as dash_task
from tests.dashboard.test_task_page import csrf_of, form_data, make_world, signed_in
from tests.server.test_bad_input import (
    assert_refused,
    create,
    padded_task,
    raw_json,
    streamed,
    task_body,
    world,
)

MARK = "@@RAW@@"
MARK_KEY = "@@KEY@@"


def with_raw(body: dict[str, Any], value: bytes, *, key: bytes | None = None) -> bytes:
    """``body`` as JSON with the placeholder value (and key) replaced by raw bytes."""
    text = json.dumps(body).encode()
    text = text.replace(json.dumps(MARK).encode(), value)
    if key is not None:
        text = text.replace(json.dumps(MARK_KEY).encode(), key)
    return text


def deep(levels: int, kind: str = "array") -> bytes:
    if kind == "array":
        return b"[" * levels + b"]" * levels
    return b'{"a":' * levels + b"1" + b"}" * levels


# -- nesting ---------------------------------------------------------------------------


async def test_json_nested_10000_deep_is_400(app_client: httpx.AsyncClient) -> None:
    task = await create(app_client, "existing")
    before = await world(app_client)
    bodies = [
        with_raw(task_body("k", payload={"x": MARK}), deep(10_000)),
        with_raw(task_body("k", payload={"x": MARK}), deep(10_000, "object")),
        with_raw(task_body("k", payload={}, payload_schema={"properties": MARK}), deep(10_000)),
        with_raw(task_body("k", response_schema=MARK), deep(10_000, "object")),
        with_raw(task_body("k", task_metadata={"x": MARK}), deep(10_000)),
    ]
    for body in bodies:
        refused = assert_refused(
            await app_client.post("/api/tasks", **raw_json(body)), 400, "INVALID_JSON"
        )
        assert "nested too deeply" in refused["message"], refused
    answer = with_raw({"response": {"approved": MARK}}, deep(10_000))
    refused = assert_refused(
        await app_client.post(f"/api/tasks/{task['id']}/complete", **raw_json(answer)),
        400,
        "INVALID_JSON",
    )
    # Past the guard's 100 levels but within what the parser reads: the same limit, named
    # where it is broken.
    in_schema = with_raw(task_body("k", payload={}, payload_schema={"not": MARK}), deep(150))
    refused = assert_refused(
        await app_client.post("/api/tasks", **raw_json(in_schema)), 422, "VALIDATION_ERROR"
    )
    assert refused["details"][0]["type"] == "json_too_deep"
    assert refused["details"][0]["loc"][:2] == ["payload_schema", "not"]
    assert await world(app_client) == before


# -- size --------------------------------------------------------------------------------

LIMIT = 4096


@pytest.fixture
async def limited(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(database_url, max_body_bytes=LIMIT)) as (_app, client):
        yield client


async def test_body_of_exactly_the_limit_passes_and_one_byte_over_is_413(
    limited: httpx.AsyncClient,
) -> None:
    client = limited
    task = await create(client, "answer-me")
    before = await world(client)
    over = padded_task("over", LIMIT + 1)
    assert len(over) == LIMIT + 1
    # With Content-Length, and streamed (chunked, no length: the bytes are counted).
    resp = await client.post("/api/tasks", **raw_json(over))
    body = assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
    assert str(LIMIT) in body["message"]
    resp = await client.post(
        "/api/tasks", content=streamed(over, 1000), headers={"content-type": "application/json"}
    )
    assert resp.request.headers["transfer-encoding"] == "chunked"
    assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
    answer = json.dumps({"response": {"approved": True}}).encode()
    answer_over = answer + b" " * (LIMIT + 1 - len(answer))
    resp = await client.post(f"/api/tasks/{task['id']}/complete", **raw_json(answer_over))
    assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
    assert await world(client) == before

    at = padded_task("at-limit", LIMIT)
    assert len(at) == LIMIT
    made = await client.post("/api/tasks", **raw_json(at))
    assert made.status_code == 201, made.text
    at_streamed = padded_task("at-limit-streamed", LIMIT)
    made = await client.post(
        "/api/tasks",
        content=streamed(at_streamed, 1000),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in made.request.headers
    assert made.status_code == 201, made.text
    answer_at = answer + b" " * (LIMIT - len(answer))
    done = await client.post(f"/api/tasks/{task['id']}/complete", **raw_json(answer_at))
    assert done.status_code == 200, done.text


async def test_huge_arrays(app_client: httpx.AsyncClient) -> None:
    """Past the body limit: 413. In a schema: too complex. In data: taken, or checked."""
    task = await create(
        app_client,
        "list-answer",
        response_schema={
            "type": "object",
            "properties": {"ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 10}},
        },
    )
    before = await world(app_client)
    zeros = b"[" + b",".join([b"0"] * 600_000) + b"]"  # 1.2 MB, over the default 1 MiB
    resp = await app_client.post(
        "/api/tasks", **raw_json(with_raw(task_body("k", payload={"x": MARK}), zeros))
    )
    assert_refused(resp, 413, "PAYLOAD_TOO_LARGE")
    big_enum = list(range(30_000))
    resp = await app_client.post(
        "/api/tasks", json=task_body("k", response_schema={"enum": big_enum})
    )
    body = assert_refused(resp, 400, "SCHEMA_TOO_COMPLEX")
    assert "response_schema" in body["message"]
    strings = ["x"] * 100_000
    resp = await app_client.post(
        f"/api/tasks/{task['id']}/complete", json={"response": {"ids": strings}}
    )
    body = assert_refused(resp, 422, "SCHEMA_VALIDATION_FAILED")
    # Problems are listed, but a bounded number of them.
    assert 0 < len(body["details"]) <= 50, len(body["details"])
    assert await world(app_client) == before

    # A big array the schema allows is data like any other: stored and read back whole.
    numbers = list(range(100_000))
    made = await create(app_client, "big-array", payload={"amount": 1, "rows": numbers})
    got = (await app_client.get(f"/api/tasks/{made['id']}")).json()
    assert got["payload"]["rows"] == numbers


# -- unicode -----------------------------------------------------------------------------

# Unpaired surrogates as raw UTF-8 bytes (ED A0..BF xx): not valid UTF-8, yet Python's
# parser reads them (it decodes with surrogatepass).
RAW_SURROGATE = b'"a\xed\xa0\x80b"'
NOT_UTF8 = [
    b'"\xc0\xaf"',  # overlong "/"
    b'"\xe0\x80\xaf"',  # overlong "/" in three bytes
    b'"\xf0\x80\x80\xaf"',  # overlong in four
    b'"\xff"',
    b'"\x80"',  # a lone continuation byte
    b'"\xe2\x82"',  # cut short
    b'"\xf4\x90\x80\x80"',  # past U+10FFFF
]


async def test_unpaired_surrogates_and_nul_in_keys_and_strings_are_422(
    app_client: httpx.AsyncClient,
) -> None:
    task = await create(app_client, "answer-me")
    before = await world(app_client)
    cases: list[tuple[bytes, list[Any]]] = [
        # Escaped, in keys: the error names the key, escaped so that it can be sent.
        (
            with_raw(task_body("k", payload={MARK_KEY: 1}), b"", key=b'"\\udc00"'),
            ["payload", "\\udc00"],
        ),
        (
            with_raw(task_body("k", task_metadata={MARK_KEY: 1}), b"", key=b'"x\\ud800y"'),
            ["task_metadata", "x\\ud800y"],
        ),
        # A key is looked at before what it holds.
        (
            with_raw(task_body("k", payload={MARK_KEY: {"n": "\x00"}}), b"", key=b'"\\udfff"'),
            ["payload", "\\udfff"],
        ),
        # Raw UTF-8 surrogate bytes, in a value and in a key.
        (with_raw(task_body("k", payload={"note": MARK}), RAW_SURROGATE), ["payload", "note"]),
        (
            with_raw(task_body("k", payload={MARK_KEY: 1}), b"", key=RAW_SURROGATE),
            ["payload", "a\\ud800b"],
        ),
        (with_raw(task_body("k", task=MARK), RAW_SURROGATE), ["task"]),
    ]
    for body, loc in cases:
        resp = await app_client.post("/api/tasks", **raw_json(body))
        refused = assert_refused(resp, 422, "VALIDATION_ERROR")
        assert refused["details"][0]["loc"] == loc, (body[:80], refused)
        assert refused["details"][0]["type"] == "string_unstorable"
        resp.content.decode("utf-8")  # the error itself is valid UTF-8
    answers = [
        with_raw({"response": {MARK_KEY: True}}, b"", key=b'"\\ud800"'),
        with_raw({"response": {"approved": True, "note": MARK}}, RAW_SURROGATE),
    ]
    for answer in answers:
        resp = await app_client.post(f"/api/tasks/{task['id']}/complete", **raw_json(answer))
        assert_refused(resp, 422, "VALIDATION_ERROR")
    cancel = with_raw({"reason": MARK}, RAW_SURROGATE)
    resp = await app_client.post(f"/api/tasks/{task['id']}/cancel", **raw_json(cancel))
    assert_refused(resp, 422, "VALIDATION_ERROR")
    assert await world(app_client) == before


async def test_overlong_and_invalid_utf8_is_400(app_client: httpx.AsyncClient) -> None:
    task = await create(app_client, "answer-me")
    before = await world(app_client)
    for raw in NOT_UTF8:
        for body in (
            with_raw(task_body("k", payload={"note": MARK}), raw),
            with_raw(task_body("k", payload={MARK_KEY: 1}), b"", key=raw),
            with_raw(task_body("k", task=MARK), raw),
        ):
            resp = await app_client.post("/api/tasks", **raw_json(body))
            assert_refused(resp, 400, "INVALID_JSON")
        answer = with_raw({"response": {"approved": True, "note": MARK}}, raw)
        resp = await app_client.post(f"/api/tasks/{task['id']}/complete", **raw_json(answer))
        assert_refused(resp, 400, "INVALID_JSON")
    # A raw control character inside a string is not JSON either (it must be escaped).
    for raw in (b'"a\x00b"', b'"a\x01b"', b'"a\nb"'):
        body = with_raw(task_body("k", payload={"note": MARK}), raw)
        assert_refused(await app_client.post("/api/tasks", **raw_json(body)), 400, "INVALID_JSON")
    assert await world(app_client) == before


async def test_utf16_and_utf32_bodies_get_the_same_checks(app_client: httpx.AsyncClient) -> None:
    """The parser also reads UTF-16 and UTF-32; the checks must not look only at UTF-8."""
    before = await world(app_client)
    nul = json.dumps(task_body("k", payload={"note": "a\x00b"}))
    nan = with_raw(task_body("k", payload={"x": MARK}), b"NaN").decode()
    deep_text = with_raw(task_body("k", payload={"x": MARK}), deep(150)).decode()
    for encoding in ("utf-16", "utf-16-le", "utf-32"):
        resp = await app_client.post("/api/tasks", **raw_json(nul.encode(encoding)))
        assert_refused(resp, 422, "VALIDATION_ERROR")
        resp = await app_client.post("/api/tasks", **raw_json(nan.encode(encoding)))
        assert_refused(resp, 400, "INVALID_JSON")
        resp = await app_client.post("/api/tasks", **raw_json(deep_text.encode(encoding)))
        assert_refused(resp, 422, "VALIDATION_ERROR")
    assert await world(app_client) == before
    # A clean UTF-16 body is JSON as much as UTF-8 is (RFC 8259 asks for UTF-8; the
    # parser takes both, and what it takes gets the same checks).
    made = await app_client.post(
        "/api/tasks", **raw_json(json.dumps(task_body("utf16")).encode("utf-16"))
    )
    assert made.status_code == 201, made.text


ODD_BUT_VALID = [
    "👩‍👩‍👧‍👦",  # a family: four code points joined by ZWJs
    "\u202eevil.txt",  # right-to-left override
    "\ufeffbom inside",
    "\uffff\ufffe",  # noncharacters
    "e\u0301\u0301\u0301",  # combining marks
    "\U0010ffff",  # the last code point
    "tab\there",
    "ǅ ß İ ﬃ",  # case oddities
]


async def test_odd_but_valid_unicode_round_trips(app_client: httpx.AsyncClient) -> None:
    payload = {"amount": 1, **{f"k{i}": s for i, s in enumerate(ODD_BUT_VALID)}}
    payload["😀 key \u202e"] = "astral key"
    title = " ".join(ODD_BUT_VALID)[:200]
    made = await create(app_client, "odd-unicode-👩‍👩‍👧", payload=payload, task=title)
    # An astral character written as an escaped surrogate pair is one valid character.
    escaped = with_raw(
        task_body("odd-escaped", payload={"amount": 1, "s": MARK}), b'"\\ud83d\\ude00"'
    )
    pair = await app_client.post("/api/tasks", **raw_json(escaped))
    assert pair.status_code == 201, pair.text
    got = (await app_client.get(f"/api/tasks/{made['id']}")).json()
    assert got["payload"] == payload
    assert got["task"] == title
    assert got["idempotency_key"] == "odd-unicode-👩‍👩‍👧"
    got = (await app_client.get(f"/api/tasks/{pair.json()['id']}")).json()
    assert got["payload"] == {"amount": 1, "s": "😀"}
    done = await app_client.post(
        f"/api/tasks/{made['id']}/complete",
        json={"response": {"approved": True, "note": "\u202e👩‍👩‍👧 ok"}},
    )
    assert done.status_code == 200, done.text
    assert done.json()["response"]["note"] == "\u202e👩‍👩‍👧 ok"


# -- duplicate keys ----------------------------------------------------------------------


async def test_duplicate_keys_are_400(app_client: httpx.AsyncClient) -> None:
    """A repeated key is read one way here and maybe another by a proxy or a client's own
    check ({"task": "a", "task": "b"}): refused, wherever it is."""
    task = await create(app_client, "answer-me")
    before = await world(app_client)
    body = json.dumps(task_body("k"))
    duplicated = [
        (body[:-1] + ', "task": "other"}', "task"),
        (body[:-1] + ', "idempotency_key": "other"}', "idempotency_key"),
        # The same key spelled with an escape is the same key.
        (body[:-1] + ', "\\u0074ask": "other"}', "task"),
        (body.replace('"currency": "EUR"', '"currency": "EUR", "amount": 6'), "amount"),
        (body.replace('"required": ["approved"]', '"required": [], "required": []'), "required"),
        (body[:-1] + ', "task_metadata": {"a": {"b": 1, "b": 1}}}', "b"),
        (body[:-1] + ', "assign_to": {"email": "a@b.io", "email": "c@d.io"}}', "email"),
    ]
    for text, key in duplicated:
        resp = await app_client.post("/api/tasks", **raw_json(text))
        refused = assert_refused(resp, 400, "INVALID_JSON")
        assert repr(key) in refused["message"], refused
        assert refused["details"][0]["type"] == "duplicate_key"
    answers = [
        '{"response": {"approved": true, "approved": false}}',
        '{"response": {"approved": true}, "response": {"approved": false}}',
    ]
    for text in answers:
        resp = await app_client.post(f"/api/tasks/{task['id']}/complete", **raw_json(text))
        assert_refused(resp, 400, "INVALID_JSON")
    resp = await app_client.post(
        f"/api/tasks/{task['id']}/cancel", **raw_json('{"reason": "a", "reason": "b"}')
    )
    assert_refused(resp, 400, "INVALID_JSON")
    # A key repeated in different objects, or in an array of objects, is no duplicate.
    fine = task_body("fine", payload={"amount": 1, "rows": [{"a": 1}, {"a": 2}], "x": {"a": 3}})
    made = await app_client.post("/api/tasks", json=fine)
    assert made.status_code == 201, made.text
    after = await world(app_client)
    assert after["tasks"][1:] == before["tasks"]


# -- numbers -----------------------------------------------------------------------------

NOT_A_DOUBLE = [b"1e999", b"-1e999", b"1E+400", b"1" + b"0" * 400 + b".5", b"-2e308"]


async def test_numbers_no_double_holds_are_400(app_client: httpx.AsyncClient) -> None:
    task = await create(app_client, "answer-me")
    before = await world(app_client)
    for number in NOT_A_DOUBLE:
        for body, loc in (
            (with_raw(task_body("k", payload={"x": MARK}), number), ["payload", "x"]),
            (with_raw(task_body("k", task_metadata={"m": [MARK]}), number), ["task_metadata"]),
            (with_raw(task_body("k", payload={}, payload_schema={"maximum": MARK}), number), []),
            (with_raw(task_body("k", timeout_seconds=MARK), number), ["timeout_seconds"]),
        ):
            resp = await app_client.post("/api/tasks", **raw_json(body))
            refused = assert_refused(resp, 400, "INVALID_JSON")
            assert refused["details"][0]["type"] == "number_not_finite"
            assert refused["details"][0]["loc"][: len(loc)] == loc
        answer = with_raw({"response": {"approved": True, "score": MARK}}, number)
        resp = await app_client.post(f"/api/tasks/{task['id']}/complete", **raw_json(answer))
        refused = assert_refused(resp, 400, "INVALID_JSON")
        assert refused["details"][0]["loc"] == ["response", "score"]
    # An integer of more digits than Python converts (4,300).
    huge = with_raw(task_body("k", payload={"x": MARK}), b"9" * 5000)
    assert_refused(await app_client.post("/api/tasks", **raw_json(huge)), 400, "INVALID_JSON")
    assert await world(app_client) == before


async def test_numbers_at_the_edges_round_trip(app_client: httpx.AsyncClient) -> None:
    body = with_raw(
        task_body("edges", payload={"amount": 1, "x": MARK}),
        b'{"neg_zero_int": -0, "neg_zero": -0.0, "max": 1.7976931348623157e308,'
        b' "tiny": 5e-324, "big": ' + b"9" * 300 + b', "exp": 1e308, "e_small": 1e-400}',
    )
    made = await app_client.post("/api/tasks", **raw_json(body))
    assert made.status_code == 201, made.text
    got = (await app_client.get(f"/api/tasks/{made.json()['id']}")).json()["payload"]["x"]
    assert got["neg_zero_int"] == 0
    assert got["neg_zero"] == 0.0
    assert str(got["neg_zero"]) == "-0.0"
    assert got["max"] == 1.7976931348623157e308
    assert got["tiny"] == 5e-324
    assert got["big"] == int("9" * 300)
    assert got["exp"] == 1e308
    assert got["e_small"] == 0.0  # underflows to zero, which is a double
    # A huge integer checked against a schema bound: an answer, not a crash.
    task = await create(
        app_client,
        "bounded",
        payload_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
        payload={"n": 10**100},
        response_schema={"type": "object", "properties": {"n": {"maximum": 10}}},
    )
    before = await world(app_client)
    resp = await app_client.post(
        f"/api/tasks/{task['id']}/complete", json={"response": {"n": 10**200}}
    )
    assert_refused(resp, 422, "SCHEMA_VALIDATION_FAILED")
    for timeout in (10**100, -(10**100)):
        resp = await app_client.post("/api/tasks", json=task_body("k", timeout_seconds=timeout))
        assert_refused(resp, 422, "TIMEOUT_OUT_OF_RANGE")
    assert await world(app_client) == before


# -- media types -------------------------------------------------------------------------

NOT_JSON = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "application/xml",
    "text/json",
    "application/jsonx",
    None,  # no Content-Type at all
]


async def test_bodies_not_sent_as_json_are_422_saying_so(app_client: httpx.AsyncClient) -> None:
    task = await create(app_client, "answer-me")
    before = await world(app_client)
    for content_type in NOT_JSON:
        headers = {"content-type": content_type} if content_type else {}
        for path, body in (
            ("/api/tasks", json.dumps(task_body("k"))),
            (f"/api/tasks/{task['id']}/complete", '{"response": {"approved": true}}'),
            ("/api/tasks", "task=x&payload=y"),
        ):
            resp = await app_client.post(path, content=body.encode(), headers=headers)
            refused = assert_refused(resp, 422, "VALIDATION_ERROR")
            assert "application/json" in refused["message"], (content_type, refused)
    assert await world(app_client) == before
    # JSON by any of its names is read as JSON.
    for i, content_type in enumerate(
        ("application/json; charset=utf-8", "application/vnd.api+json", "Application/JSON")
    ):
        resp = await app_client.post(
            "/api/tasks",
            content=json.dumps(task_body(f"ct-{i}")).encode(),
            headers={"content-type": content_type},
        )
        assert resp.status_code == 201, (content_type, resp.text)


# -- the dashboard's JSON fields -----------------------------------------------------------


class FreeForm(BaseModel):
    extra: dict[str, Any]


async def test_dashboard_json_field_refuses_what_no_answer_can_hold(tmp_path: Path) -> None:
    """A form's JSON field is parsed by the server, not the API's guard: 1e999 and an escaped
    unpaired surrogate were a 500 when the answer was sealed."""
    async with make_world(f"sqlite+aiosqlite:///{tmp_path / 'dash.db'}") as dash:
        task_id = await dash_task(
            dash.admin,
            "free-form",
            assign_to={"email": "rita@acme.com"},
            response_schema=FreeForm.model_json_schema(),
            form_definition=extract_form(FreeForm).model_dump(mode="json", exclude_none=True),
        )
        async with signed_in(dash.app, "rita@acme.com") as reviewer:
            page = await reviewer.get(f"/task?id={task_id}")
            for typed in ('{"a": 1e999}', '{"a": [-1E400]}', '{"a": "\\ud800"}', '{"\\udc00": 1}'):
                sent = await reviewer.post(
                    "/task/submit", data=form_data({"f.extra": typed}, csrf_of(page.text), task_id)
                )
                assert sent.status_code == 422, (typed, sent.status_code)
                assert "Traceback" not in sent.text
                page = sent
            still = (await dash.admin.get(f"/api/tasks/{task_id}")).json()
            assert (still["status"], still["response"]) == ("assigned", None)
            sent = await reviewer.post(
                "/task/submit",
                data=form_data({"f.extra": '{"a": 1e308, "b": "😀"}'}, csrf_of(page.text), task_id),
            )
            assert sent.status_code == 303, sent.text
        done = (await dash.admin.get(f"/api/tasks/{task_id}")).json()
        assert done["response"] == {"extra": {"a": 1e308, "b": "😀"}}
