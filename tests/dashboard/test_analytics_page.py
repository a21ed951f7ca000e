"""The /analytics page: the figures of /api/stats for an operator, refused for a reviewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser

import pytest

from tests.server._stats_world import DAY, OPS, RITA, StatsWorld, stats_world


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[StatsWorld]:
    async with stats_world(database_url) as made:
        yield made


class Figures(HTMLParser):
    """The headline figures (``dd[data-figure]``), each table's rows by group, its headers,
    the labelled inputs and the current links."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.tables: dict[str, dict[str, list[str]]] = {}
        self.headers: dict[str, list[str]] = {}
        self.labels: set[str] = set()
        self.inputs: set[str] = set()
        self.current: list[str] = []
        self._table: str | None = None
        self._row: str | None = None
        self._cell: str | None = None
        self._text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "dd" and a.get("data-figure"):
            self._cell = f"figure:{a['data-figure']}"
        elif tag == "table":
            self._table = a.get("id") or ""
            self.tables[self._table] = {}
            self.headers[self._table] = []
        elif tag == "tr" and a.get("data-group") is not None and self._table is not None:
            self._row = a["data-group"]
            self.tables[self._table][self._row or ""] = []
        elif tag in ("td", "th") and self._table is not None:
            self._cell = "row" if self._row is not None else "head"
            if tag == "th" and self._row is None:
                assert a.get("scope") == "col"
        elif tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        elif tag == "input" and a.get("id"):
            self.inputs.add(str(a["id"]))
        elif tag == "a" and a.get("aria-current") == "page":
            self.current.append(str(a.get("href")))
        self._text = []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text).strip()
        if self._cell is None:
            pass
        elif tag == "dd" and self._cell.startswith("figure:"):
            self.figures[self._cell.removeprefix("figure:")] = text
            self._cell = None
        elif tag in ("td", "th") and self._table is not None:
            if self._cell == "row" and self._row is not None:
                self.tables[self._table][self._row].append(text)
            else:
                self.headers[self._table].append(text)
            self._cell = None
        if tag == "tr":
            self._row = None
        if tag == "table":
            self._table = None


async def test_an_operator_sees_the_figures_by_channel_and_assignee(world: StatsWorld) -> None:
    async with world.signed_in(OPS) as ops:
        page = await ops.get("/analytics", params={"since": DAY, "until": DAY})
    assert page.status_code == 200, page.text
    shown = Figures(page.text)
    assert shown.figures == {
        "created": "6",
        "completed": "3",
        "timed_out": "1",
        "cancelled": "1",
        "verification_exhausted": "0",
        "open": "1",
        "completion_rate": "60.0%",
        "first_view_p50": "45s",
        "first_view_p90": "5m",
        "answer_p50": "2m",
        "answer_p90": "10m",
    }
    columns = [
        "Created",
        "Completed",
        "Timed out",
        "Cancelled",
        "Open",
        "Completion rate",
        "First view p50",
        "First view p90",
        "Answer p50",
        "Answer p90",
    ]
    assert shown.headers["by-channel"] == ["Channel", *columns]
    assert shown.headers["by-assignee"] == ["Assignee", *columns]
    assert shown.tables["by-channel"] == {
        "dashboard": ["dashboard", "2", "2", "0", "0", "0", "100.0%", "30s", "45s", "1m", "2m"],
        "api": ["api", "2", "1", "0", "1", "0", "50.0%", "—", "—", "10m", "10m"],
        "scheduler": ["scheduler", "1", "0", "1", "0", "0", "0.0%", "—", "—", "—", "—"],
        "open": ["open", "1", "0", "0", "0", "1", "—", "5m", "5m", "—", "—"],
    }
    rita = world.users[RITA]
    assert shown.tables["by-assignee"][rita] == [
        "Rita Reviewer", "2", "2", "0", "0", "0", "100.0%", "30s", "45s", "1m", "2m",
    ]  # fmt: skip
    assert set(shown.tables["by-assignee"]) == {
        rita,
        world.users["sam@acme.com"],
        "admin",
        "unassigned",
    }
    # Every input has its label; the nav marks the page.
    assert shown.inputs == {"a-since", "a-until", "a-title"} <= shown.labels
    assert "/analytics" in shown.current


async def test_title_filter_presets_and_a_bad_period(world: StatsWorld) -> None:
    async with world.signed_in(OPS) as ops:
        refunds = await ops.get(
            "/analytics", params={"since": DAY, "until": DAY, "title": "refund"}
        )
        assert refunds.status_code == 200
        assert Figures(refunds.text).figures["created"] == "3"
        # A preset: the last 30 days hold none of these (they are dated March 2026).
        preset = await ops.get("/analytics", params={"days": "30"})
        assert preset.status_code == 200
        shown = Figures(preset.text)
        assert shown.figures["created"] == "0"
        assert "/analytics?days=30" in shown.current
        # No period at all: the last 7 days.
        assert "/analytics?days=7" in Figures((await ops.get("/analytics")).text).current
        bad = await ops.get("/analytics", params={"since": "2026-03-10", "until": "2026-03-01"})
    assert bad.status_code == 422
    assert 'role="alert"' in bad.text
    assert "until: must be after since" in bad.text
    assert Figures(bad.text).figures == {}


async def test_a_reviewer_is_refused_and_sees_no_link(world: StatsWorld) -> None:
    async with world.signed_in(RITA) as rita:
        refused = await rita.get("/analytics")
        assert refused.status_code == 403
        assert "Operators only" in refused.text
        queue = await rita.get("/")
        assert 'href="/analytics"' not in queue.text
    async with world.browser() as anon:
        sent = await anon.get("/analytics")
        assert sent.status_code == 303
        assert sent.headers["location"] == "/login?next=%2Fanalytics"
    async with world.signed_in(OPS) as ops:
        assert 'href="/analytics"' in (await ops.get("/")).text
