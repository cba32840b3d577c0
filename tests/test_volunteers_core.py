"""Volunteers through the core: check-in, posts, first-come claims, reminders, no-shows, ratings, /myservice."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cli import main
from bot.core import volunteers as core
from bot.core.scheduler import JobKind, SchedulerConfig
from bot.scheduler import RunReport, run_due_jobs
from storage.database import Database
from storage.models import ClaimStatus, PartnerUnit, Person, SlotClaim, Volunteer, VolunteerStatus
from tests.harness import CoreChat
from tests.volunteer_fixture import local, org_with_community_staff

CONFIG = SchedulerConfig()


def test_org_import_reads_partner_units(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gridbot.db"
    partners = tmp_path / "partners.csv"
    partners.write_text("unit_code,unit_name,kind\nPU-01,市供电公司,国企\nPU-02,区人民医院,事业单位\n",
                        encoding="utf-8")
    assert main(["org", "import", str(partners), "--database-url", url]) == 0
    partners.write_text("unit_code,unit_name,kind\nPU-01,国网南阳供电公司,国企\n", encoding="utf-8")
    assert main(["org", "import", str(partners), "--database-url", url]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("unit_code,unit_name\nbad code!,x\n", encoding="utf-8")
    assert main(["org", "import", str(bad), "--database-url", url]) == 1

    async def names() -> dict[str, str]:
        database = Database(url)
        try:
            units = await database.run(lambda s: list(s.scalars(select(PartnerUnit))))
            return {unit.code: unit.name for unit in units}
        finally:
            await database.dispose()

    import asyncio
    assert asyncio.run(names()) == {"PU-01": "国网南阳供电公司", "PU-02": "区人民医院"}


async def test_check_in_approve_claim_until_full_remind_serve_rate(chat: CoreChat) -> None:
    await chat.database.run(org_with_community_staff)
    chen = chat.person(3001, "陈社区")
    li, wang, zhao = chat.person(8001, "李"), chat.person(8002, "王"), chat.person(8003, "赵")
    for person in (chen, li, wang, zhao):
        await chat.text(person, "/start")

    for volunteer, name in ((li, "李党员"), (wang, "王志愿"), (zhao, "赵志愿")):
        await chat.text(volunteer, "/start v_DG-JS")
        assert "建设社区" in volunteer.last.text
        await chat.text(volunteer, name)
        await chat.press(volunteer, volunteer.last.button("市供电公司"))
        await chat.press(volunteer, volunteer.last.button("是"))
        assert "确认" in volunteer.last.text
        card = chen.find(name)
        assert "党员：是" in card.text
        await chat.press(chen, card.button("批准"), card)
        assert "已批准" in volunteer.last.text or "通过" in volunteer.last.text

    # Staff publish a post with two slots of two places each (Friday 09:00 and 13:00).
    await chat.text(chen, "/post")
    for answer in ("楼道清理", "清理楼道杂物", "建设路12号院", "2026-11-27 09:00-11:00\n2026-11-27 13:00-15:00", "2"):
        await chat.text(chen, answer)
    assert "楼道清理" in chen.last.text and "3" in chen.last.text
    # The announcements went to the outbox for its loop, not to the staff member's answer.
    pending = await chat.database.run(lambda s: pending_announcements(s))
    assert pending == 3

    slot_ids = await chat.database.run(lambda s: [slot.id for slot in core.get_slot(s, 1).post.slots])
    first = f"vl:cl:{slot_ids[0]}"
    await claim(chat, li, first)
    await claim(chat, wang, first)
    await claim(chat, zhao, first)
    assert "已满" in zhao.answers[-1].text and zhao.answers[-1].alert
    await claim(chat, zhao, f"vl:cl:{slot_ids[1]}")

    # Too late to cancel within two hours; Zhao cancels in time and claims again.
    claims = await chat.database.run(lambda s: {c.volunteer.name: c.id for c in s.scalars(select(SlotClaim))})
    await chat.press(zhao, f"vl:cx:{claims['赵志愿']}")
    assert "已取消" in zhao.last.text

    # The evening before: the two of the morning slot are reminded, then an hour before.
    report = await run_jobs(chat, local(2026, 11, 26, 20, 1))
    assert report.done[JobKind.VOLUNTEER_REMIND] == 2  # one piece per slot
    assert "明天" in li.last.text and "明天" in wang.last.text and "明天" not in zhao.last.text
    report = await run_jobs(chat, local(2026, 11, 27, 8, 1))
    assert report.done[JobKind.VOLUNTEER_REMIND] == 1
    assert "一小时后" in li.last.text and li.last.button("签到")
    assert (await run_jobs(chat, local(2026, 11, 27, 8, 2))).done[JobKind.VOLUNTEER_REMIND] == 0

    chat.clock.now = local(2026, 11, 27, 8, 50)
    await chat.press(wang, f"vl:cx:{claims['王志愿']}")
    assert "太晚" in wang.answers[-1].text
    await chat.press(li, f"vl:in:{claims['李党员']}")
    assert "签到" in li.last.text
    await chat.location(li, 32.9987, 112.5283)
    chat.clock.now = local(2026, 11, 27, 10, 30)
    await chat.press(li, f"vl:out:{claims['李党员']}")

    report = await run_jobs(chat, local(2026, 11, 27, 11, 1))
    assert report.done[JobKind.VOLUNTEER_CLOSE] == 1
    statuses = await chat.database.run(
        lambda s: {c.volunteer.name: (c.status, c.latitude) for c in s.scalars(select(SlotClaim))})
    assert statuses["王志愿"][0] is ClaimStatus.NO_SHOW
    assert statuses["李党员"] == (ClaimStatus.CLAIMED, 32.9987)

    chat.clock.now = local(2026, 11, 27, 12, 0)
    over = chen.find("1人服务")
    await chat.press(chen, over.button("李党员"), over)
    await chat.press(chen, chen.last.button("★★★★★"))
    await chat.text(chen, "认真负责")
    wang_claim = claims["王志愿"]
    await chat.press(chen, f"vl:st:{wang_claim}:5")
    assert chen.answers[-1].text == "该志愿者未在此时段到岗服务。"

    await chat.text(li, "/myservice")
    assert "1.5小时" in li.last.text and "★★★★★" in li.last.text
    await chat.text(chen, "/myservice")
    assert "李党员：1.5小时" in chen.last.text
    rated = await chat.database.run(lambda s: s.get_one(SlotClaim, claims["李党员"]).comment)
    assert rated == "认真负责"


async def run_jobs(chat: CoreChat, at: datetime) -> RunReport:
    report = await run_due_jobs(chat.database, at, CONFIG)
    await chat.deliver_all(report.deliveries)
    return report


def pending_announcements(session: Session) -> int:
    from storage.models import OutboxMessage, OutboxStatus, Priority

    return len(list(session.scalars(select(OutboxMessage).where(
        OutboxMessage.priority == Priority.BROADCAST, OutboxMessage.status == OutboxStatus.PENDING))))


async def claim(chat: CoreChat, person: object, data: str) -> None:
    await chat.press(person, data)  # type: ignore[arg-type]


async def test_a_volunteer_of_another_community_cannot_claim(database: Database) -> None:
    def work(session: Session) -> None:
        org = org_with_community_staff(session)
        chen = session.scalars(select(Person).where(Person.external_id == "3001")).one()
        session.refresh(chen)
        outsider = Person(channel="telegram", external_id="9", chat_id="9", display_name="外", state_data={},
                          created_at=local(2026, 11, 1, 8))
        session.add(outsider)
        session.flush()
        session.add(Volunteer(person_id=outsider.id, community_id=org.community2, name="外", party_member=False,
                              status=VolunteerStatus.APPROVED, created_at=local(2026, 11, 1, 8)))
        now = local(2026, 11, 25, 10)
        post = core.publish_post(session, chen, org.community, "岗", "", "", [core.SlotTimes(
            local(2026, 11, 27, 9), local(2026, 11, 27, 10))], 1, now, "Asia/Shanghai")
        with pytest.raises(core.VolunteerRefused) as refused:
            core.claim_slot(session, outsider, post.slots[0].id, now)
        assert refused.value.reason == core.NOT_A_VOLUNTEER

    await database.run(work)


def test_slot_reminders_skip_what_is_already_past() -> None:
    evening = core.evening_before(local(2026, 11, 27, 9), "Asia/Shanghai")
    assert evening == local(2026, 11, 26, 20)
    assert core.evening_before(local(2026, 11, 27, 0, 30), "Asia/Shanghai") + timedelta(hours=4) > local(
        2026, 11, 26, 23, 59)


async def test_careless_check_in_and_forged_buttons_are_answered_clearly(chat: CoreChat) -> None:
    await chat.database.run(lambda session: org_with_community_staff(session, "en"))
    chen, li = chat.person(3001, "陈社区", "en"), chat.person(8001, "Li", "en")
    await chat.text(chen, "/start")
    await chat.text(li, "/start v_NOPE")
    assert li.last.text == "This volunteer link names no community we know."
    await chat.text(li, "/start v_DG-JS")
    await chat.photo(li, "AgACphoto")
    assert "name as text" in li.last.text
    await chat.text(li, "x" * 51)
    assert "at most 50 characters" in li.last.text
    await chat.press(li, "vl:pm:1")  # a button of a step not reached yet
    assert li.answers[-1].text == "This button is no longer valid."
    await chat.text(li, "Li Ming")
    await chat.press(li, li.last.button("None"))
    await chat.press(li, li.last.button("Yes"))
    card = chen.find("Li Ming")
    assert "partner unit: none" in card.text

    await chat.press(li, card.button("Approve"), li.last)  # the volunteer presses the staff's button
    assert li.answers[-1].text == "Only the staff of this community may do that."
    await chat.press(chen, card.button("Approve"), card)
    await chat.press(chen, "vl:ok:1", card)  # pressed twice
    assert chen.answers[-1].text == "This check-in was already answered."
    for forged in ("vl:cl:abc", "vl:cl:99999", "vl:in:", "vl:st:1:9"):
        await chat.press(li, forged)
        assert li.answers[-1].alert and li.answers[-1].text in (
            "This button is no longer valid.", "This is no longer available.")

    await chat.text(li, "/post")
    assert li.last.text == "Only the staff of this community may do that."
    await chat.text(chen, "/post")
    await chat.text(chen, "t" * 101)
    assert "within 100 characters" in chen.last.text
    for answer in ("Stairwell", "Clear it", "Bldg 1"):
        await chat.text(chen, answer)
    await chat.text(chen, "next friday morning")
    assert "one per line" in chen.last.text
    await chat.text(chen, "2026-11-20 09:00-11:00")
    assert chen.last.text == "A slot must start in the future and end after it starts."
    await chat.text(chen, "2026-11-28 09:00-11:00")
    await chat.text(chen, "0")
    assert chen.last.text == "The number of places must be between 1 and 500."
