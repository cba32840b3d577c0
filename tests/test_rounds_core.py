"""Rounds rules below the chat: a patrol left open is closed by the scheduler at the end of the night window."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import rounds
from bot.scheduler import run_due_jobs
from storage.database import Database
from storage.models import OutboxMessage, Patrol, Person, Role
from tests.org_fixture import make_small_org, staff

# 22:00 on a Wednesday night in Nanyang; the night window ends at 06:00 the next morning (22:00 UTC).
EVENING = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
NIGHT_END = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)


def patrol_left_open(session: Session) -> int:
    org = make_small_org(session)
    worker = staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    session.flush()
    session.expire_all()
    worker = session.get_one(Person, worker.id)
    rounds.start_patrol(session, worker, EVENING)
    rounds.add_point(session, worker, 32.9987, 112.5283, EVENING)
    rounds.add_point(session, worker, 32.9997, 112.5283, EVENING.replace(minute=30))
    return worker.id


async def test_a_patrol_left_open_is_closed_at_the_end_of_the_night(database: Database) -> None:
    worker_id = await database.run(patrol_left_open)

    await run_due_jobs(database, NIGHT_END.replace(hour=21, minute=59))
    still_open = await database.run(lambda s: s.scalars(select(Patrol)).one())
    assert still_open.ended_at is None

    report = await run_due_jobs(database, NIGHT_END.replace(minute=30))

    def closed_and_told(session: Session) -> tuple[Patrol, list[str]]:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.person_id == worker_id))
        return session.scalars(select(Patrol)).one(), [row.action.get("text", "") for row in rows]

    patrol, texts = await database.run(closed_and_told)
    assert patrol.auto_closed and patrol.ended_at == NIGHT_END
    assert report.done["close_patrols"] == 1
    assert any("closed at the end of the night" in text and "2 points" in text and "8 h 0 min" in text
               for text in texts), texts
    # A second run finds nothing left to close.
    again = await run_due_jobs(database, NIGHT_END.replace(minute=31))
    assert again.done["close_patrols"] == 0


async def test_a_worker_sees_only_buildings_of_their_grid(database: Database) -> None:
    def chosen(session: Session) -> tuple[list[str], bool]:
        org = make_small_org(session)
        worker = staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
        session.flush()
        session.expire_all()
        worker = session.get_one(Person, worker.id)
        names = [b.code for b in rounds.grid_buildings(session, worker)]
        try:
            rounds.building_by_code_in_grid(session, worker, "XH-RM-01-B1")
        except rounds.RequestRefused:
            return names, True
        return names, False

    names, refused = await database.run(chosen)
    assert names == ["DG-JS-01-B1"] and refused
