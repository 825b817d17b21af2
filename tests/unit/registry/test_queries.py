"""Registry reads: lists and inboxes page by keyset cursors with exact totals.

The rows are written through registry.writes (the only writer), several pages' worth,
with equal sort keys where a cursor must break the tie. `QueriesContract` runs here on a
fresh SQLite file per test and in tests/integration/registry on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from landflow.vocabulary import Role, Stage, Step
from registry import queries, writes
from registry.queries import BadCursor, Page
from tests.unit.registry import T0, list_change, projection, sqlite_engine, task

HAIDIAN = "海淀区"
DAXING = "大兴区"
POLLUTER = "91110105POLLUTER01"
OTHER = "91110105OTHERCO001"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from sqlite_engine(tmp_path)


def every_page(fetch: Callable[..., Page[Any]], limit: int, **filters: Any) -> list[Page[Any]]:
    """Follow next_cursor to the end (a bounded number of pages)."""
    pages = [fetch(limit=limit, **filters)]
    while pages[-1].next_cursor is not None:
        assert len(pages) < 50, "the cursor never ends"
        pages.append(fetch(limit=limit, cursor=pages[-1].next_cursor, **filters))
    return pages


def cursor_of(key: list[Any]) -> str:
    """A cursor in the API's encoding, with a key of our choosing."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def epb_task(days: int, *, district: str = "朝阳区", **extra: Any) -> Any:
    return task(Role.district_epb, deadline=T0 + timedelta(days=days), district=district, **extra)


class QueriesContract:
    """The reads' paging and filters on whatever database the `engine` fixture opens."""

    @pytest.fixture
    def session(self, engine: Engine) -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    # --- list_parcels ----------------------------------------------------------------

    @pytest.fixture
    def parcels(self, session: Session) -> None:
        """P01..P07 in 朝阳区 (P03 registered twice; P06 overdue, P07 released), H1, H2."""
        for number in range(1, 8):
            pid = f"P0{number}"
            extra: dict[str, Any] = {}
            if number == 6:
                extra = {"overdue": True, "stage": Stage.investigation}
            if number == 7:
                extra = {"status": "released", "stage": Stage.released, "tasks": []}
            writes.apply_projection(session, projection=projection(pid, **extra))
        older = projection("P03", 9, run_id="run-P03-old", started_at=T0 - timedelta(days=1))
        writes.apply_projection(session, projection=older)
        for pid in ("H1", "H2"):
            writes.apply_projection(session, projection=projection(pid, district=HAIDIAN))

    def test_list_parcels_pages_current_registrations_with_exact_totals(
        self, session: Session, parcels: None
    ) -> None:
        fetch = partial(queries.list_parcels, session, district="朝阳区")
        pages = every_page(fetch, limit=3)
        assert [[r.parcel_id for r in p.items] for p in pages] == [
            ["P01", "P02", "P03"],
            ["P04", "P05", "P06"],
            ["P07"],
        ]
        assert {p.total for p in pages} == {7}  # the older P03 registration is not counted
        assert pages[0].items[2].run_id == "run-P03"
        # a page that ends exactly at the last row has no next cursor (no empty page)
        running = every_page(fetch, limit=3, status="running")
        assert [len(p.items) for p in running] == [3, 3] and running[-1].next_cursor is None
        assert {p.total for p in running} == {6}
        whole = queries.list_parcels(session)
        assert (whole.total, len(whole.items), whole.next_cursor) == (9, 9, None)

    def test_list_parcels_filters(self, session: Session, parcels: None) -> None:
        def ids(**filters: Any) -> tuple[int, list[str]]:
            page = queries.list_parcels(session, **filters)
            return page.total, [r.parcel_id for r in page.items]

        assert ids(overdue=True) == (1, ["P06"])
        assert ids(stage="investigation") == (1, ["P06"])
        assert ids(status="released") == (1, ["P07"])
        assert ids(district=HAIDIAN) == (2, ["H1", "H2"])
        assert ids(waiting_on="district_epb", district=HAIDIAN) == (2, ["H1", "H2"])
        assert ids(waiting_on="city_epb") == (0, [])
        assert ids(district="延庆区") == (0, [])

    def test_a_list_parcels_cursor_is_stable_under_inserts(
        self, session: Session, parcels: None
    ) -> None:
        first = queries.list_parcels(session, district="朝阳区", limit=2)
        writes.apply_projection(session, projection=projection("P00"))  # sorts before the cursor
        second = queries.list_parcels(session, district="朝阳区", limit=2, cursor=first.next_cursor)
        assert [r.parcel_id for r in second.items] == ["P03", "P04"]
        assert second.total == 8

    # --- tasks_for -------------------------------------------------------------------

    @pytest.fixture
    def inbox(self, session: Session) -> None:
        """Six open 朝阳区 EPB tasks (two deadline ties), and tasks no inbox may show."""
        for pid, days in (("A", 5), ("B", 3), ("C", 5), ("D", 9), ("E", 3), ("F", 1)):
            extra: dict[str, Any] = {}
            if pid == "D":
                extra = {"stage": Stage.remediation, "step": Step.plan_filing, "overdue": True}
            writes.apply_projection(
                session, projection=projection(pid, tasks=[epb_task(days, **extra)])
            )
        # not in this inbox: another district, another role, a released parcel, an older
        # registration of A, a party task
        writes.apply_projection(
            session,
            projection=projection("H", district=HAIDIAN, tasks=[epb_task(2, district=HAIDIAN)]),
        )
        writes.apply_projection(session, projection=projection("G", tasks=[task(Role.city_epb)]))
        done = projection("R", status="released", stage=Stage.released, tasks=[epb_task(2)])
        writes.apply_projection(session, projection=done)
        older = projection(
            "A", run_id="run-A-old", started_at=T0 - timedelta(days=9), tasks=[epb_task(2)]
        )
        writes.apply_projection(session, projection=older)
        party_tasks = [
            task(Role.responsible_party, party=POLLUTER, deadline=T0 + timedelta(days=4)),
            task(Role.responsible_party, party=OTHER, deadline=T0 + timedelta(days=4)),
        ]
        writes.apply_projection(session, projection=projection("Q", tasks=party_tasks))
        # a soil transport from 朝阳区 owed by the destination's EPB (大兴区)
        transport = epb_task(6, district=DAXING, step=Step.transport_acknowledgement)
        writes.apply_projection(session, projection=projection("T", tasks=[transport]))

    def test_an_inbox_pages_oldest_deadline_first_across_ties(
        self, session: Session, inbox: None
    ) -> None:
        fetch = partial(
            queries.tasks_for, session, role="district_epb", district="朝阳区", party=None
        )
        pages = every_page(fetch, limit=2)
        order = ["F", "B", "E", "A", "C", "D"]  # by deadline, then by task id within a tie
        assert [row.parcel_id for page in pages for _, row in page.items] == order
        assert [len(p.items) for p in pages] == [2, 2, 2] and pages[-1].next_cursor is None
        assert {p.total for p in pages} == {6}
        # one task a page: cursors land inside both ties, and each task is seen once
        one_by_one = every_page(fetch, limit=1)
        assert [page.items[0][1].parcel_id for page in one_by_one] == order
        for owed, row in pages[0].items:
            assert owed.run_id == row.run_id and row.current and row.status == "running"

    def test_inbox_filters(self, session: Session, inbox: None) -> None:
        def ids(
            role: str = "district_epb",
            district: str | None = "朝阳区",
            party: str | None = None,
            **filters: Any,
        ) -> tuple[int, list[str]]:
            page = queries.tasks_for(session, role=role, district=district, party=party, **filters)
            return page.total, sorted(p.parcel_id for _, p in page.items)

        assert ids(overdue=True) == (1, ["D"])
        assert ids(overdue=False)[0] == 5
        assert ids(stage="remediation") == (1, ["D"])
        assert ids(district=HAIDIAN) == (1, ["H"])
        assert ids(district=DAXING) == (1, ["T"])  # the destination's EPB sees the transport
        assert ids(district=DAXING, in_district="朝阳区") == (1, ["T"])
        assert ids(district=DAXING, in_district=HAIDIAN) == (0, [])
        assert ids("city_epb", None) == (1, ["G"])
        assert ids("responsible_party", None, party=POLLUTER) == (1, ["Q"])
        assert ids("responsible_party", None, party="91110105NOBODY0001") == (0, [])
        assert ids("responsible_party", None) == (2, ["Q", "Q"])
        counts = queries.tasks_by_stage(session, role="district_epb", district="朝阳区", party=None)
        assert counts == {"closure_screening": 5, "remediation": 1}

    # --- list_entries ----------------------------------------------------------------

    @pytest.fixture
    def entries(self, session: Session) -> None:
        """Seven contaminated entries (three entered at the same moment), one left, one
        in 海淀区; only some have a parcel row."""
        for number, days in enumerate((0, 2, 2, 2, 5, 7, 9), start=1):
            pid = f"CY-2027-{number:03d}"
            name = "原北京焦化厂" if number % 2 else "某化工厂旧址"
            if number <= 4:
                writes.apply_projection(session, projection=projection(pid, name=name, listed=True))
            at = T0 + timedelta(days=days)
            writes.apply_list_change(session, change=list_change(pid, at=at, name=name))
        left = list_change("CY-2027-007", "leave", T0 + timedelta(days=30))
        writes.apply_list_change(session, change=left)
        haidian = list_change("HD-2027-001", at=T0, district=HAIDIAN, name="某农药厂 50%用地")
        writes.apply_list_change(session, change=haidian)
        writes.apply_list_change(session, change=list_change("CY-2027-001", list_name="negative"))

    def test_a_public_list_pages_by_entry_time_across_ties(
        self, session: Session, entries: None
    ) -> None:
        fetch = partial(queries.list_entries, session, list_name="contaminated", district="朝阳区")
        pages = every_page(fetch, limit=2)
        listed = [e.parcel_id for p in pages for e, _ in p.items]
        assert listed == [f"CY-2027-{n:03d}" for n in range(1, 7)]  # 007 left the list
        assert [len(p.items) for p in pages] == [2, 2, 2] and {p.total for p in pages} == {6}
        one_by_one = [e.parcel_id for p in every_page(fetch, limit=1) for e, _ in p.items]
        assert one_by_one == listed
        joined = {entry.parcel_id: row for page in pages for entry, row in page.items}
        assert joined["CY-2027-001"].listed is True  # the registration's row, joined by run
        assert joined["CY-2027-005"] is None  # an entry whose parcel row is not there
        everything = queries.list_entries(session, list_name="contaminated", current=False)
        assert everything.total == 8 and "CY-2027-007" in {e.parcel_id for e, _ in everything.items}
        negative = queries.list_entries(session, list_name="negative")
        assert (negative.total, negative.items[0][0].parcel_id) == (1, "CY-2027-001")

    def test_a_public_list_searches_names_and_parcel_ids(
        self, session: Session, entries: None
    ) -> None:
        def found(search: str, **kw: Any) -> tuple[int, list[str]]:
            page = queries.list_entries(session, list_name="contaminated", search=search, **kw)
            return page.total, sorted(e.parcel_id for e, _ in page.items)

        assert found("化工") == (3, ["CY-2027-002", "CY-2027-004", "CY-2027-006"])
        assert found("CY-2027-00", district="朝阳区")[0] == 6
        assert found("HD-") == (1, ["HD-2027-001"])
        assert found("焦化", district=HAIDIAN) == (0, [])
        assert found("无此地块") == (0, [])

    def test_a_search_for_wildcard_characters_matches_them_literally(
        self, session: Session, entries: None
    ) -> None:
        """`%` and `_` in a visitor's search are text, not LIKE patterns."""
        for search in ("50%", "%", "_"):
            page = queries.list_entries(session, list_name="contaminated", search=search)
            assert [e.parcel_id for e, _ in page.items] == (
                ["HD-2027-001"] if search != "_" else []
            ), search

    def test_a_parcel_id_search_ignores_case_on_every_database(
        self, session: Session, entries: None
    ) -> None:
        """SQLite's LIKE ignores ASCII case; the same search must find the same entries
        whichever database the deployment uses."""
        page = queries.list_entries(session, list_name="contaminated", search="hd-2027")
        assert [e.parcel_id for e, _ in page.items] == ["HD-2027-001"]

    # --- bad cursors -----------------------------------------------------------------

    @pytest.mark.parametrize(
        "cursor",
        [
            "not base64 at all!",
            "%%%",
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
            cursor_of({"a": 1}),  # JSON, not a key
            cursor_of([1, 2, 3]),  # a key of the wrong size
        ],
    )
    def test_a_cursor_this_api_never_gave_out_is_refused(
        self, session: Session, cursor: str
    ) -> None:
        with pytest.raises(BadCursor):
            queries.list_parcels(session, cursor=cursor)
        with pytest.raises(BadCursor):
            queries.tasks_for(session, role="city_epb", district=None, party=None, cursor=cursor)
        with pytest.raises(BadCursor):
            queries.list_entries(session, list_name="contaminated", cursor=cursor)

    @pytest.mark.parametrize("key", [["yesterday", 1], ["2027-03-01T00:00:00", "x"], [None, None]])
    def test_a_cursor_of_the_right_size_but_wrong_values_is_refused(
        self, session: Session, key: list[Any]
    ) -> None:
        """Values that are not the sort key's types are a bad cursor (the API's 422),
        not an error escaping as a 500."""
        cursor = cursor_of(key)
        with pytest.raises(BadCursor):
            queries.tasks_for(session, role="city_epb", district=None, party=None, cursor=cursor)
        if key[0] != "2027-03-01T00:00:00":  # a run id may be any string
            with pytest.raises(BadCursor):
                queries.list_entries(session, list_name="contaminated", cursor=cursor)

    def test_a_cursor_of_one_list_on_another_query_is_refused(
        self, session: Session, inbox: None, entries: None
    ) -> None:
        tasks = queries.tasks_for(
            session, role="district_epb", district="朝阳区", party=None, limit=1
        )
        listed = queries.list_entries(session, list_name="contaminated", limit=1)
        parcels = queries.list_parcels(session, limit=1)
        for cursor in (tasks.next_cursor, listed.next_cursor):
            with pytest.raises(BadCursor):
                queries.list_parcels(session, cursor=cursor)
        with pytest.raises(BadCursor):
            queries.tasks_for(
                session, role="city_epb", district=None, party=None, cursor=parcels.next_cursor
            )


class TestQueriesOnSqlite(QueriesContract):
    pass
