"""``Request.rating_stars``, the copy of a rating's stars the desk's month figures read from the covering index,
follows the rating however it is written: added, confirmed and rated through the core, deleted, imported."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.request_export import import_history, read_import_file
from bot.core.requests import Outcome, confirm, rate
from storage.database import Database
from storage.models import Person, Rating, Request, RequestStatus
from tests.test_bulletin import SPECS, TZ, make_month
from tests.test_request_export import NOW, _export_history, _forget_requests


def copies_and_stars(session: Session) -> dict[int, tuple[int | None, int | None]]:
    """Each request's copy of the stars, read afresh, beside its rating's stars (None without a rating)."""
    session.expire_all()
    rows = session.execute(
        select(Request.id, Request.rating_stars, Rating.stars).outerjoin(Rating, Rating.request_id == Request.id)
    )
    return {request_id: (copy, stars) for request_id, copy, stars in rows}


def assert_in_step(session: Session) -> None:
    pairs = copies_and_stars(session)
    assert pairs and all(copy == stars for copy, stars in pairs.values()), pairs


async def test_a_rating_added_to_the_session_copies_its_stars(database: Database) -> None:
    def check(session: Session) -> None:
        make_month(session)
        session.flush()
        copies = {copy for copy, _stars in copies_and_stars(session).values()}
        # The fixture's stars, and none for requests without a rating or rated without stars.
        assert copies == {spec.stars for spec in SPECS.values()}
        assert_in_step(session)

    await database.run(check)


async def test_confirming_rating_and_deleting_follow_the_rating(database: Database) -> None:
    def check(session: Session) -> None:
        make_month(session)
        resident = session.scalars(select(Person).where(Person.external_id == "900")).one()
        unrated = session.scalars(
            select(Request).outerjoin(Rating, Rating.request_id == Request.id)
            .where(Request.status == RequestStatus.RESOLVED, Rating.request_id.is_(None))
        ).first()
        assert unrated is not None and unrated.resolved_at is not None
        request_id, later = unrated.id, unrated.resolved_at + timedelta(days=1)
        confirm(session, resident, request_id, Outcome.FIXED, later)
        session.flush()
        assert copies_and_stars(session)[request_id] == (None, None)
        rate(session, resident, request_id, 4, later)
        session.flush()
        # The request loaded in the session holds it too, and a fresh read of its row.
        assert session.get_one(Request, request_id).rating_stars == 4
        assert copies_and_stars(session)[request_id] == (4, 4)
        session.delete(session.get_one(Rating, request_id))
        session.flush()
        assert copies_and_stars(session)[request_id] == (None, None)
        assert_in_step(session)

    await database.run(check)


async def test_imported_history_holds_its_stars(database: Database, tmp_path: Path) -> None:
    await database.run(make_month)
    path = tmp_path / "history.csv"
    await _export_history(database, path, "csv")
    await database.run(_forget_requests)
    await database.run(lambda session: import_history(session, read_import_file(path), TZ, NOW))

    def check(session: Session) -> None:
        assert {copy for copy, _stars in copies_and_stars(session).values()} >= {5, 4, 3, 2}
        assert_in_step(session)

    await database.run(check)
