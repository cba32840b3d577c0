"""A focused campaign through a real engine against the Bot API simulator: the community opens it and names its
targets, two grid workers record them with photos, the owner sees the progress by grid, and after its last day
the scheduler sends the owner the final progress and the digest lists what is overdue."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.scheduler import SchedulerConfig
from bot.scheduler import run_due_jobs
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import Building, Campaign, CampaignTarget, Role, TargetStatus
from tests.e2e import RunningBot, running_bot
from tests.org_fixture import make_small_org, staff
from tests.test_rounds_e2e import JPEG, button, has_button, started

# The campaign's last day is 10 December; the next morning's digest time in Shanghai, 09:05.
AFTER_THE_END = datetime(2026, 12, 11, 1, 5, tzinfo=UTC)


def org_with_campaign_staff(session: Session) -> None:
    org = make_small_org(session)
    session.add(Building(code="DG-JS-01-B2", name="建设路12号院2号楼", address="建设路12号", grid_id=org.grid))
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, 7003, "Zhao Worker", Role.WORKER, org.empty_grid, "en")
    staff(session, 7002, "Chen Community", Role.COMMUNITY, org.community, "en")


async def open_campaign(chen: SimUser) -> SimMessage:
    """Chen opens "Flying wires" until 10 December with three targets: one chosen, two sent as codes (and one
    code of another community, refused)."""
    await chen.send_text("/campaign")
    listing = await chen.wait_for(has_button("ca:new"))
    assert "No campaigns yet" in (listing.text or "")
    await chen.press(listing, button(listing, "ca:new"))
    await chen.wait_for_text("What is its name?")
    await chen.send_text("Flying wires")
    categories = await chen.wait_for(has_button("ca:c:"))
    await chen.press(categories, button(categories, "ca:c:"))
    await chen.wait_for_text("Its last day?")
    await chen.send_text("10 December")
    await chen.wait_for_text("YYYY-MM-DD")
    await chen.send_text("2026-12-10")
    choose = await chen.wait_for(has_button("ca:t:"))
    await chen.press(choose, button(choose, "ca:t:1:DG-JS-01-B1"))
    await chen.wait_for_text("1 targets added.")
    await chen.send_text("DG-JS-01-B2\nDG-JS-02-B1, XH-RM-01-B1")
    added = await chen.wait_for_text("2 targets added.")
    assert "Not in your area or unknown: XH-RM-01-B1" in (added.text or "")
    await chen.press(choose, button(choose, "ca:done:"))
    return await chen.wait_for_text("targets rectified")


async def record(worker: SimUser, building: str, verdict: str) -> SimMessage:
    """The worker records their grid's target in ``building`` (``y`` rectified, ``n`` not) with a photo."""
    await worker.send_text("/targets")
    listing = await worker.wait_for(has_button("ca:r:"))
    target = next(data for label, data in listing.buttons() if data and building in label)
    await worker.press(listing, target)
    question = await worker.wait_for(has_button(f"ca:{verdict}:"))
    await worker.press(question, button(question, f"ca:{verdict}:"))
    await worker.wait_for_text("Send a photo of the place")
    await worker.send_text("done")
    await worker.wait_for_text("Please send a photo of the place.")
    await worker.send_photo(JPEG, caption="wires taken down")
    return await worker.wait_for_text("recorded as")


async def targets(bot: RunningBot) -> dict[str, TargetStatus]:
    def read(session: Session) -> dict[str, TargetStatus]:
        rows = session.scalars(select(CampaignTarget)).all()
        return {row.building.code: row.status for row in rows}

    return await bot.service.database.run(read)


async def test_two_workers_rectify_a_campaigns_targets_and_the_owner_sees_progress(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(org_with_campaign_staff)
        chen = await started(simulator, 7002, "Chen", "en")
        wang = await started(simulator, 7001, "Wang", "en")
        zhao = await started(simulator, 7003, "Zhao", "en")

        opened = await open_campaign(chen)
        assert "Flying wires (until Dec 10, 2026): 0 of 3 targets rectified" in (opened.text or "")

        # Each worker sees only their own grid's targets.
        await zhao.send_text("/targets")
        zhaos = await zhao.wait_for(has_button("ca:r:"))
        assert [label for label, _ in zhaos.buttons()] == ["🎯 Flying wires · 建设路20号院3号楼"]

        done = await record(wang, "1号楼", "y")
        assert "recorded as rectified. Targets still waiting: 1" in (done.text or "")
        await record(wang, "2号楼", "n")
        await record(zhao, "3号楼", "y")
        assert await targets(bot) == {"DG-JS-01-B1": TargetStatus.RECTIFIED,
                                      "DG-JS-01-B2": TargetStatus.NOT_RECTIFIED,
                                      "DG-JS-02-B1": TargetStatus.RECTIFIED}

        await chen.send_text("/campaign")
        listing = await chen.wait_for(has_button("ca:p:"))
        mark = simulator.seq
        await chen.press(listing, button(listing, "ca:p:"))
        shown = await chen.wait_for_text("targets rectified", since=mark)
        text = shown.text or ""
        assert "2 of 3 targets rectified" in text
        assert "• 建设一网格: 1 of 2 rectified, 1 not rectified, 0 waiting" in text
        assert "• 建设二网格: 1 of 1 rectified, 0 not rectified, 0 waiting" in text

        # The morning after its last day: the final progress to the owner, the overdue target in the digest.
        mark = simulator.seq
        await run_due_jobs(bot.service.database, AFTER_THE_END, SchedulerConfig(), send_from=bot.service.clock())
        ended = await chen.wait_for_text("The campaign has ended.", since=mark)
        assert "2 of 3 targets rectified" in (ended.text or "")
        digest = await chen.wait_for_text("Campaign targets overdue", since=mark)
        assert "• Flying wires (ended Dec 10, 2026): 1 not rectified" in (digest.text or "")
        reported = await bot.service.database.run(lambda s: s.scalars(select(Campaign)).one().final_report_at)
        assert reported == AFTER_THE_END

        # A second run the same morning sends the final progress no second time.
        mark = simulator.seq
        await run_due_jobs(bot.service.database, AFTER_THE_END, SchedulerConfig(), send_from=bot.service.clock())
        await chen.send_text("/campaign")
        await chen.wait_for(has_button("ca:p:"), since=mark)
        assert not [m for m in chen.messages if m.seq > mark and "has ended" in (m.text or "")]
