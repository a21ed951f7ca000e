"""First to claim (``assign_to={"emails": [...]}``) through the JSON API and the dashboard's
queue, on SQLite and PostgreSQL: the task is offered to every listed directory user; any of
them claims it or answers it (answering takes it in the same write); then the others still
open it but may neither claim nor answer it (403 ``NOT_ASSIGNED_TO_YOU``, saying who took it)
and it leaves their queue; unknown addresses are skipped and, when nobody is known, the task
is unassigned with the reason in its created audit row; operators keep their powers; named
approvers still answer after a candidate claimed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.policies._people import Company, company
from tests.policies._world import csrf_of, dashboard_sign_in
from tests.policies.test_bulk_answer import answer, choose, open_tasks, results_of

ALICE, RITA, BOB, OLGA = "alice@acme.com", "rita@acme.com", "bob@acme.com", "olga@acme.com"
APPROVE = {"response": {"approved": True}}


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


async def listed_ids(client: httpx.AsyncClient) -> set[str]:
    got = await client.get("/api/tasks")
    assert got.status_code == 200, got.text
    return {t["id"] for t in got.json()["items"]}


async def offered(acme: Company, *emails: str, **policy: Any) -> str:
    return await acme.create(assign_to={"emails": list(emails)}, **policy)


async def test_offered_to_each_listed_person_and_the_first_claim_takes_it(acme: Company) -> None:
    task_id = await offered(acme, "Alice@acme.com ", RITA, "stranger@acme.com")
    row = await acme.row(task_id)
    assert (row["assigned_to_user_id"], row["status"]) == (None, "created")
    (created,) = await acme.audit(task_id)
    assert created["action"] == "created"
    assert created["detail"]["candidates"] == [acme.ids[ALICE], acme.ids[RITA]]
    assert "Offered to 2 people" in created["detail"]["message"]
    assert "Not in the directory: stranger@acme.com" in created["detail"]["message"]

    async with acme.as_user(ALICE) as alice, acme.as_user(RITA) as rita, acme.as_user(BOB) as bob:
        # Both candidates see it and find it in their list; someone else does not.
        for client in (alice, rita):
            assert (await client.get(f"/api/tasks/{task_id}")).status_code == 200
            assert task_id in await listed_ids(client)
        assert (await bob.get(f"/api/tasks/{task_id}")).status_code == 404
        assert task_id not in await listed_ids(bob)
        assert (await bob.post(f"/api/tasks/{task_id}/claim")).status_code == 404

        claimed = await alice.post(f"/api/tasks/{task_id}/claim")
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["assigned_to_user_id"] == acme.ids[ALICE]
        assert claimed.json()["status"] == "in_progress"

        # Rita still opens it (to learn who took it), but it is no longer in her list and
        # she can neither claim nor answer it.
        assert (await rita.get(f"/api/tasks/{task_id}")).status_code == 200
        assert task_id not in await listed_ids(rita)
        for path, body in (("claim", None), ("complete", APPROVE)):
            refused = await rita.post(f"/api/tasks/{task_id}/{path}", json=body)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "NOT_ASSIGNED_TO_YOU"
            assert refused.json()["message"] == "Alice Approver took this task."
        assert (await acme.row(task_id))["status"] == "in_progress"

        done = await alice.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
        assert done.status_code == 200, done.text
        assert done.json()["completed_by_email"] == ALICE

    claimed_row = [a for a in await acme.audit(task_id) if a["action"] == "claimed"]
    assert [(a["actor_id"], a["from_status"], a["to_status"]) for a in claimed_row] == [
        (acme.ids[ALICE], "created", "in_progress")
    ]


async def test_answering_takes_the_task_in_the_same_write(acme: Company) -> None:
    task_id = await offered(acme, ALICE, RITA)
    async with acme.as_user(ALICE) as alice, acme.as_user(RITA) as rita:
        done = await rita.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
        assert done.status_code == 200, done.text
        assert done.json()["assigned_to_user_id"] == acme.ids[RITA]
        assert done.json()["completed_by_user_id"] == acme.ids[RITA]
        late = await alice.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
        assert late.status_code == 409, late.text
        assert late.json()["error"] == "TASK_ALREADY_TERMINAL"
    actions = [(a["action"], a["actor_id"]) for a in await acme.audit(task_id)]
    assert actions[-1] == ("completed", acme.ids[RITA])


async def test_nobody_known_leaves_it_unassigned_and_says_why(acme: Company) -> None:
    task_id = await offered(acme, "x@elsewhere.com", "y@elsewhere.com")
    row = await acme.row(task_id)
    assert (row["assigned_to_user_id"], row["status"]) == (None, "created")
    (created,) = await acme.audit(task_id)
    assert created["detail"]["candidates"] == []
    assert created["detail"]["message"].startswith("None of the listed people is in the directory")
    async with acme.as_user(ALICE) as alice:
        assert (await alice.get(f"/api/tasks/{task_id}")).status_code == 404
        assert (await alice.post(f"/api/tasks/{task_id}/claim")).status_code == 404
    # Open to operators, as an unassigned task is.
    async with acme.as_user(OLGA) as olga:
        done = await olga.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
        assert done.status_code == 200, done.text


async def test_operators_keep_their_powers(acme: Company) -> None:
    task_id = await offered(acme, ALICE, RITA)
    async with acme.as_user(ALICE) as alice, acme.as_user(OLGA) as olga:
        assert (await alice.post(f"/api/tasks/{task_id}/claim")).status_code == 200
        # An operator answers a task a candidate took, as any assigned task.
        done = await olga.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
        assert done.status_code == 200, done.text
        assert done.json()["completed_by_email"] == OLGA


async def test_one_address_still_pins_that_person(acme: Company) -> None:
    task_id = await offered(acme, RITA)
    row = await acme.row(task_id)
    assert (row["assigned_to_user_id"], row["status"]) == (acme.ids[RITA], "assigned")
    (created,) = await acme.audit(task_id)
    assert created["detail"] is None
    async with acme.as_user(ALICE) as alice:
        assert (await alice.get(f"/api/tasks/{task_id}")).status_code == 404


async def test_approvers_answer_after_a_candidate_claimed(acme: Company) -> None:
    """Approvers are not candidates: a listed approver answers whoever holds the task."""
    task_id = await offered(acme, ALICE, RITA, approvers=[ALICE, BOB])
    async with acme.as_user(ALICE) as alice, acme.as_user(BOB) as bob:
        assert (await alice.post(f"/api/tasks/{task_id}/claim")).status_code == 200
        done = await bob.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
        assert done.status_code == 200, done.text
        assert done.json()["completed_by_email"] == BOB


async def test_the_dashboard_queue_shows_it_until_someone_takes_it(acme: Company) -> None:
    task_id = await offered(acme, ALICE, RITA)
    async with acme.client() as alice, acme.client() as rita:
        await dashboard_sign_in(alice, ALICE)
        await dashboard_sign_in(rita, RITA)
        for client in (alice, rita):
            queue = await client.get("/ui/queue")
            assert queue.status_code == 200, queue.text
            assert task_id in queue.text
        before = await rita.get(f"/task?id={task_id}")
        assert 'action="/task/claim"' in before.text
        assert 'action="/task/submit"' in before.text
        async with acme.as_user(ALICE) as api:
            assert (await api.post(f"/api/tasks/{task_id}/claim")).status_code == 200
        assert task_id in (await alice.get("/ui/queue")).text
        assert task_id not in (await rita.get("/ui/queue")).text
        page = await rita.get(f"/task?id={task_id}")
        assert page.status_code == 200, page.text
        assert "Alice Approver took this task; only they or an operator" in page.text
        assert 'action="/task/claim"' not in page.text
        assert 'action="/task/submit"' not in page.text
        # The claim form of a page opened before Alice took it.
        late = await rita.post(
            "/task/claim", data={"csrf_token": csrf_of(before.text), "id": task_id}
        )
        assert late.status_code == 403, late.text
        assert "Alice Approver took this task, so it cannot be claimed." in late.text


async def test_a_bulk_answer_takes_the_offered_ones_and_names_who_took_the_other(
    acme: Company,
) -> None:
    ids = [await offered(acme, ALICE, RITA) for _ in range(2)]
    async with acme.client() as rita:
        await dashboard_sign_in(rita, RITA)
        await open_tasks(rita, *ids)
        chosen = await choose(rita, *ids)
        assert chosen.status_code == 200, chosen.text
        async with acme.as_user(ALICE) as alice:
            assert (await alice.post(f"/api/tasks/{ids[1]}/claim")).status_code == 200
        done = await answer(rita, chosen, ids, **{"f.approved": "true"})
    assert done.status_code == 200, done.text
    results = results_of(done.text)
    assert results[ids[0]] == ("answered", None, "")
    assert results[ids[1]] == (
        "refused",
        "NOT_ASSIGNED_TO_YOU",
        "Alice Approver took this task, so your answer was not recorded.",
    )
    first, second = await acme.row(ids[0]), await acme.row(ids[1])
    assert (first["status"], first["assigned_to_user_id"]) == ("completed", acme.ids[RITA])
    assert (second["status"], second["assigned_to_user_id"]) == ("in_progress", acme.ids[ALICE])


async def test_a_candidate_who_is_away_is_replaced_by_their_delegate(acme: Company) -> None:
    until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    away = await acme.admin.patch(
        f"/api/admin/users/{acme.ids[RITA]}",
        json={"away_until": until, "delegate_to_user_id": acme.ids[BOB]},
    )
    assert away.status_code == 200, away.text
    task_id = await offered(acme, ALICE, RITA)
    (created,) = await acme.audit(task_id)
    assert created["detail"]["candidates"] == [acme.ids[ALICE], acme.ids[BOB]]
    assert "rita@acme.com is away: offered to bob@acme.com instead." in created["detail"]["message"]
    assert [(d["from"], d["to"]) for d in created["detail"]["delegated"]] == [
        (acme.ids[RITA], acme.ids[BOB])
    ]
    async with acme.as_user(RITA) as rita, acme.as_user(BOB) as bob:
        assert task_id not in await listed_ids(rita)
        assert task_id in await listed_ids(bob)
        done = await bob.post(f"/api/tasks/{task_id}/complete", json=APPROVE)
        assert done.status_code == 200, done.text
        assert done.json()["assigned_to_user_id"] == acme.ids[BOB]
