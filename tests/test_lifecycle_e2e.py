"""The whole life of a request through a real engine against the Bot API simulator over HTTP.

Each step checks what every party's chat received, in that party's language.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import Role
from tests.e2e import running_bot
from tests.org_fixture import SmallOrg, make_small_org, staff

JPEG = b"\xff\xd8\xff\xe0" + b"clutter in the stairwell" * 20 + b"\xff\xd9"


def button(message: SimMessage, prefix: str) -> str:
    for _text, data in message.buttons():
        if data and data.startswith(prefix):
            return data
    raise AssertionError(f"no {prefix!r} button on {message.text or message.caption!r}: {message.buttons()}")


def with_org_and_staff(session: Session) -> SmallOrg:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, 7002, "陈社区", Role.COMMUNITY, org.community, "zh_CN")
    staff(session, 7003, "Sun Street", Role.STREET, org.street, "en")
    return org


async def test_request_walks_the_ladder_through_the_engine(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_org_and_staff)
        li = simulator.user(1001, "李", language_code="zh-hans")
        wang = simulator.user(7001, "Wang", language_code="en")
        chen = simulator.user(7002, "陈", language_code="zh-hans")
        sun = simulator.user(7003, "Sun", language_code="en")
        for person in (wang, chen, sun):  # staff must have written to the bot once to be reachable
            await person.send_text("/start")
            await person.wait_for(lambda m: m.text is not None)

        # The resident binds and files a request with a photo.
        await li.send_text("/start b_DG-JS-01-B1")
        await li.wait_for_text("建设路12号院1号楼")
        await li.send_text("/new")
        categories = await li.wait_for(lambda m: any(d.startswith("fl:cat:") for _t, d in m.buttons()))
        await li.press(categories, button(categories, "fl:cat:1"))
        await li.wait_for(lambda m: m.edit_count > 0 or "描述" in (m.text or ""))
        await li.send_text("楼道里堆满了纸箱，挡住了消防通道")
        await li.wait_for(lambda m: any(d.startswith("fl:photos") for _t, d in m.buttons()))
        await li.send_photo(JPEG)
        done = await li.wait_for(lambda m: any(d.startswith("fl:photos") for _t, d in m.buttons()))
        await li.press(done, button(done, "fl:photos"))
        where = await li.wait_for(lambda m: any(d.startswith("fl:loc:b") for _t, d in m.buttons()))
        await li.press(where, button(where, "fl:loc:b"))
        hide = await li.wait_for(lambda m: any(d.startswith("fl:hide:0") for _t, d in m.buttons()))
        await li.press(hide, button(hide, "fl:hide:0"))
        summary = await li.wait_for(lambda m: any(d.startswith("fl:ok:") for _t, d in m.buttons()))
        mark = simulator.seq
        await li.press(summary, button(summary, "fl:ok:"))
        receipt = await li.wait_for_text("R-000001")
        assert "Wang Worker" in (receipt.text or "")

        # The grid worker gets the card with the photo, in English, and accepts.
        card = await wang.wait_for(lambda m: "R-000001" in (m.caption or m.text or ""), since=mark)
        assert card.photo is not None and "李" in (card.caption or "")
        assert "New request" in (card.caption or "")
        await wang.press(card, button(card, "rq:acc:"))
        await li.wait_for(lambda m: "Wang Worker" in (m.text or "") and "受理" in (m.text or ""), since=mark)

        # The worker escalates to the community, which accepts and resolves.
        after_accept = await wang.wait_for(lambda m: any(d.startswith("rq:esc:") for _t, d in m.buttons()))
        await wang.press(after_accept, button(after_accept, "rq:esc:"))
        await wang.wait_for_text("R-000001")
        mark = simulator.seq
        await wang.send_text("Needs the property company")
        chen_card = await chen.wait_for(lambda m: "property company" in (m.caption or m.text or ""), since=mark)
        assert "上报" in (chen_card.caption or chen_card.text or "")
        await li.wait_for(lambda m: "建设社区" in (m.text or ""), since=mark)
        await chen.press(chen_card, button(chen_card, "rq:acc:"))
        accepted = await chen.wait_for(lambda m: any(d.startswith("rq:res:") for _t, d in m.buttons()))
        await chen.press(accepted, button(accepted, "rq:res:"))
        await chen.wait_for_text("R-000001")
        mark = simulator.seq
        await chen.send_text("已联系物业清理")
        verdict = await li.wait_for(lambda m: "已联系物业清理" in (m.text or m.caption or ""), since=mark)

        # Not fixed: it reopens one level higher, at the street.
        await li.press(verdict, button(verdict, "my:ok:1:not_fixed"))
        sun_card = await sun.wait_for(lambda m: "Reopened" in (m.text or m.caption or ""), since=mark)
        assert "R-000001" in (sun_card.text or sun_card.caption or "")
        await li.wait_for(lambda m: "东关街道" in (m.text or ""), since=mark)

        # The street resolves; the resident confirms and rates five stars.
        street_card = await sun.wait_for(lambda m: any(d.startswith("rq:res:") for _t, d in m.buttons()), since=mark)
        await sun.press(street_card, button(street_card, "rq:res:"))
        await sun.wait_for_text("R-000001")
        mark = simulator.seq
        await sun.send_text("Boxes removed, passage clear")
        final = await li.wait_for(lambda m: "Boxes removed" in (m.text or m.caption or ""), since=mark)
        await li.press(final, button(final, "my:ok:1:fixed"))
        await sun.wait_for(lambda m: "confirmed R-000001" in (m.text or ""), since=mark)
        stars = await li.wait_for(lambda m: any(d.startswith("my:star:1:5") for _t, d in m.buttons()), since=mark)
        await li.press(stars, button(stars, "my:star:1:5"))
        await li.wait_for(lambda m: "评论" in (m.text or "") or "跳过" in str(m.buttons()), since=mark)
        await li.send_text("谢谢，处理得很快")
        await li.wait_for_text("感谢")
        assert_no_unanswered_presses(li, wang, chen, sun)


def assert_no_unanswered_presses(*users: SimUser) -> None:
    for user in users:
        pressed = {answer.query_id for answer in user.callback_answers}
        assert len(pressed) == len(user.callback_answers), f"{user.id}: a button press was answered twice"
