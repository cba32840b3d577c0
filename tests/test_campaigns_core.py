"""Focused campaigns in the core: importing targets from a CSV (in the core and through ``gridbot campaign
import``), what a worker is shown, what counts as overdue, and when the scheduler sends the final progress."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.cli import main as cli_main
from bot.core import campaigns
from bot.core.requests import RequestRefused
from bot.core.scheduler import SchedulerConfig
from bot.core.units import Unit
from bot.scheduler import run_due_jobs
from storage.database import Database
from storage.models import Campaign, CampaignTarget, Level, Person, Role, TargetStatus
from tests.org_fixture import make_small_org, staff

TZ = "Asia/Shanghai"
# Thursday 26 November 2026, 10:00 in Shanghai.
NOW = datetime(2026, 11, 26, 2, tzinfo=UTC)
LAST_DAY = date(2026, 11, 30)


def campaign_with_staff(session: Session) -> tuple[int, int, int]:
    """A community campaign until 30 November; the ids of the campaign, the grid's worker and the owner."""
    org = make_small_org(session)
    owner = staff(session, 3001, "陈社区", Role.COMMUNITY, org.community)
    worker = staff(session, 2001, "王网格", Role.WORKER, org.grid)
    session.flush()
    session.expire_all()
    owner = session.get_one(Person, owner.id)
    campaign = campaigns.open_campaign(session, owner, "飞线充电整治", 1, LAST_DAY, NOW, TZ)
    return campaign.id, worker.id, owner.id


def test_codes_from_a_csv_with_or_without_a_header() -> None:
    assert campaigns.codes_from_csv("name,building\n1号楼,DG-JS-01-B1\n3号楼,DG-JS-02-B1\n") == [
        "DG-JS-01-B1", "DG-JS-02-B1"]
    assert campaigns.codes_from_csv("\ufeffDG-JS-01-B1,楼顶\n\nDG-JS-02-B1\n") == ["DG-JS-01-B1", "DG-JS-02-B1"]
    assert campaigns.codes_from_csv("") == []


async def test_targets_outside_the_area_are_refused_and_repeats_kept_once(database: Database) -> None:
    def add(session: Session) -> tuple[campaigns.Added, campaigns.Added, int]:
        campaign_id, _worker, owner_id = campaign_with_staff(session)
        owner = session.get_one(Person, owner_id)
        first = campaigns.add_targets(session, owner, campaign_id, ["DG-JS-01-B1", "XH-RM-01-B1", "NOPE"])
        again = campaigns.add_targets(session, owner, campaign_id, ["DG-JS-01-B1", "DG-JS-02-B1"])
        return first, again, len(session.scalars(select(CampaignTarget)).all())

    first, again, stored = await database.run(add)
    assert first == campaigns.Added(1, ("XH-RM-01-B1", "NOPE"))
    assert again == campaigns.Added(1, ())
    assert stored == 2


@pytest.mark.parametrize(("name", "ends_on"), [
    ("占道经营整治", date(2026, 11, 25)),  # yesterday
    ("   ", LAST_DAY),
    ("占道经营整治", date(2028, 1, 1)),  # more than a year ahead
    ("整" * 101, LAST_DAY),
])
async def test_a_bad_name_or_end_date_is_refused(database: Database, name: str, ends_on: date) -> None:
    _campaign, _worker, owner_id = await database.run(campaign_with_staff)

    def open_another(session: Session) -> None:
        campaigns.open_campaign(session, session.get_one(Person, owner_id), name, 1, ends_on, NOW, TZ)

    with pytest.raises(RequestRefused):
        await database.run(open_another)
    assert len(await database.run(lambda s: s.scalars(select(Campaign)).all())) == 1


async def test_the_worker_sees_targets_until_rectified_and_overdue_counts_the_rest(database: Database) -> None:
    def setup(session: Session) -> tuple[int, int]:
        campaign_id, worker_id, owner_id = campaign_with_staff(session)
        campaigns.add_targets(session, session.get_one(Person, owner_id), campaign_id,
                              ["DG-JS-01-B1", "DG-JS-02-B1"])
        return campaign_id, worker_id

    campaign_id, worker_id = await database.run(setup)

    def shown(session: Session, now: datetime) -> list[str]:
        worker = session.get_one(Person, worker_id)
        return [target.building.code for target in campaigns.worker_targets(session, worker, now, TZ)]

    assert await database.run(lambda s: shown(s, NOW)) == ["DG-JS-01-B1"]

    def overdue(session: Session, now: datetime) -> list[int]:
        community = session.get_one(Campaign, campaign_id).unit_id
        return [count for _c, count in campaigns.overdue_targets(session, Unit(Level.COMMUNITY, community), now,
                                                                 TZ)]

    assert await database.run(lambda s: overdue(s, NOW)) == []
    after = datetime(2026, 12, 1, 1, tzinfo=UTC)  # 1 December, 09:00 in Shanghai
    assert await database.run(lambda s: overdue(s, after)) == [2]

    def rectify(session: Session) -> None:
        worker = session.get_one(Person, worker_id)
        target = campaigns.worker_targets(session, worker, NOW, TZ)[0]
        with pytest.raises(RequestRefused):
            campaigns.record_target(session, worker, target.id, True, None, "", NOW)
        campaigns.record_target(session, worker, target.id, True, "photo-1", "已拆除", NOW)

    await database.run(rectify)
    assert await database.run(lambda s: shown(s, NOW)) == []
    assert await database.run(lambda s: overdue(s, after)) == [1]
    # A month after the end the campaign leaves the digest.
    assert await database.run(lambda s: overdue(s, after + timedelta(days=31))) == []
    statuses = await database.run(lambda s: sorted(t.status for t in s.scalars(select(CampaignTarget))))
    assert statuses == sorted([TargetStatus.RECTIFIED, TargetStatus.PENDING])


async def test_the_final_progress_goes_once_after_the_last_day_at_digest_time(database: Database) -> None:
    campaign_id, _worker, _owner = await database.run(campaign_with_staff)
    config = SchedulerConfig()
    last_evening = datetime(2026, 11, 30, 13, tzinfo=UTC)  # 21:00 on the last day
    early_next = datetime(2026, 11, 30, 23, tzinfo=UTC)  # 07:00 the next morning, before the digest's time
    at_digest = datetime(2026, 12, 1, 1, 5, tzinfo=UTC)
    for moment in (last_evening, early_next):
        assert (await run_due_jobs(database, moment, config)).done["end_campaigns"] == 0
    assert (await run_due_jobs(database, at_digest, config)).done["end_campaigns"] == 1
    assert (await run_due_jobs(database, at_digest + timedelta(minutes=1), config)).done["end_campaigns"] == 0
    reported = await database.run(lambda s: s.get_one(Campaign, campaign_id).final_report_at)
    assert reported == at_digest


def test_gridbot_campaign_import_adds_the_csvs_buildings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    assert cli_main(["db", "upgrade", "--database-url", url]) == 0
    engine = create_engine(url.replace("+aiosqlite", ""))
    with Session(engine) as session, session.begin():
        campaign_id, _worker, _owner = campaign_with_staff(session)
    listing = tmp_path / "targets.csv"
    listing.write_text("building,note\nDG-JS-01-B1,楼顶\nXH-RM-01-B1,别的社区\n", encoding="utf-8")

    assert cli_main(["campaign", "import", str(campaign_id), str(listing), "--database-url", url]) == 0
    captured = capsys.readouterr()
    assert "targets added: 1" in captured.out and "XH-RM-01-B1" in captured.err
    with Session(engine) as session:
        assert [t.building.code for t in session.scalars(select(CampaignTarget))] == ["DG-JS-01-B1"]
    engine.dispose()
    assert cli_main(["campaign", "import", "999", str(listing), "--database-url", url]) == 1
    assert cli_main(["campaign", "import", str(campaign_id), str(tmp_path / "missing.csv"),
                     "--database-url", url]) == 1
