"""/categories through both engines: district staff change a deadline and add a category residents then see;
a community admin is refused."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.simulator import BotApiSimulator, SimMessage
from storage.models import AuditLog, Category, Role
from tests.e2e import running_bot
from tests.org_fixture import SmallOrg, staff
from tests.test_lifecycle_e2e import button, with_org_and_staff


def with_district(session: Session) -> SmallOrg:
    org = with_org_and_staff(session)
    staff(session, 7005, "Zhou District", Role.DISTRICT, 0, "en")
    return org


def labelled(message: SimMessage, label: str) -> str:
    for text, data in message.buttons():
        if text == label and data:
            return data
    raise AssertionError(f"no button {label!r}: {message.buttons()}")


def categories_now(session: Session) -> tuple[dict[str, int], list[str]]:
    due = {category.code: category.due_days for category in session.scalars(select(Category))}
    return due, list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


async def test_district_staff_manage_categories_in_the_chat(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_district)
        zhou = simulator.user(7005, "Zhou", language_code="en")
        chen = simulator.user(7002, "陈", language_code="zh-hans")
        li = simulator.user(1001, "李", language_code="zh-hans")

        await chen.send_text("/categories")
        await chen.wait_for_text("只有区级工作人员可以修改诉求类别。")

        await zhou.send_text("/categories")
        listing = await zhou.wait_for_text("Request categories, in the order residents see them:")
        assert "1. Clutter in common areas: 7 working days, reminder after 24 h, escalation after 48 h" in (
            listing.text or "")
        await zhou.press(listing, labelled(listing, "Clutter in common areas"))
        opened = await zhou.wait_for_text("Category clutter")
        await zhou.press(opened, labelled(opened, "Due days"))
        await zhou.wait_for_text("Now: 7")
        await zhou.send_text("5")
        await zhou.wait_for_text("Due: 5 working days")

        await zhou.send_text("/categories")
        listing = await zhou.wait_for_text("Request categories")
        await zhou.press(listing, button(listing, "ct:new"))
        await zhou.wait_for_text("noise 噪音扰民")
        await zhou.send_text("noise 噪音扰民")
        await zhou.wait_for_text("✔ Added.")

        # The resident filing next is offered the new category.
        await li.send_text("/start b_DG-JS-01-B1")
        await li.wait_for_text("建设路12号院1号楼")
        await li.send_text("/new")
        offered = await li.wait_for(lambda m: any(d.startswith("fl:cat:") for _t, d in m.buttons()))
        assert "噪音扰民" in [label for label, _data in offered.buttons()]

        due, audit = await bot.service.database.run(categories_now)
        assert due["clutter"] == 5 and due["noise"] == 7
        assert audit == ["category.changed", "category.created"]
