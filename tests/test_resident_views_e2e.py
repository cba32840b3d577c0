"""What residents and staff may see and do, tried through a real engine against the Bot API simulator: forged
staff callbacks, the "me too" offer after binding to someone else's building, and staff filing a request."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import Role
from tests.e2e import running_bot
from tests.org_fixture import SmallOrg, make_small_org, staff
from tests.test_lifecycle_e2e import button


def with_two_workers(session: Session) -> SmallOrg:
    org = make_small_org(session)
    staff(session, 7001, "Wang Worker", Role.WORKER, org.grid, "en")
    staff(session, 7004, "Qian Worker", Role.WORKER, org.grid, "en")
    return org


def text_of(message: SimMessage) -> str:
    return message.text or message.caption or ""


async def file_request(user: SimUser, description: str, hide: bool) -> None:
    await user.send_text("/new")
    categories = await user.wait_for(lambda m: any(d.startswith("fl:cat:") for _t, d in m.buttons()))
    await user.press(categories, button(categories, "fl:cat:1"))
    await user.wait_for(lambda m: "Describe" in (m.text or ""))
    await user.send_text(description)
    photos = await user.wait_for(lambda m: any(d.startswith("fl:photos") for _t, d in m.buttons()))
    await user.press(photos, button(photos, "fl:photos"))
    where = await user.wait_for(lambda m: any(d.startswith("fl:loc:") for _t, d in m.buttons()))
    await user.press(where, button(where, "fl:loc:-"))
    choice = "fl:hide:1" if hide else "fl:hide:0"
    hiding = await user.wait_for(lambda m: any(d.startswith(choice) for _t, d in m.buttons()))
    await user.press(hiding, button(hiding, choice))
    summary = await user.wait_for(lambda m: any(d.startswith("fl:ok:") for _t, d in m.buttons()))
    await user.press(summary, button(summary, "fl:ok:"))
    await user.wait_for_text("R-000001")


async def press_forged(simulator: BotApiSimulator, user: SimUser, message: SimMessage, data: str) -> None:
    """What a modified client can send: callback data that no button of ``message`` carries (the simulator's
    ``press`` refuses that, as a normal client would)."""
    user._begin_action()
    query_id = simulator._register_callback_query(user, message, data)
    user._last_query_id = query_id
    query = {"id": query_id, "from": user.to_api(), "message": message.to_api(),
             "chat_instance": str(simulator._chat_instance(user)), "data": data}
    simulator._enqueue_update("callback_query", query)


async def test_forged_staff_views_and_the_me_too_offer_show_residents_only_the_resident_view(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_two_workers)
        ann = simulator.user(1001, "Ann Hidden", language_code="en")
        bob = simulator.user(1002, "Bob", language_code="en")
        wang = simulator.user(7001, "Wang", language_code="en")
        await wang.send_text("/start")
        await wang.wait_for(lambda m: m.text is not None)
        await ann.send_text("/start b_DG-JS-01-B1")
        await ann.wait_for_text("建设路12号院1号楼")
        await file_request(ann, "My neighbour in 302 keeps junk here", hide=True)

        # Bob opens the QR link of Ann's building and starts a request of the same category.
        await bob.send_text("/start b_DG-JS-01-B1")
        await bob.wait_for_text("建设路12号院1号楼")
        await bob.send_text("/new")
        categories = await bob.wait_for(lambda m: any(d.startswith("fl:cat:") for _t, d in m.buttons()))
        await bob.press(categories, button(categories, "fl:cat:1"))
        offer = await bob.wait_for(lambda m: any(d.startswith("fl:join:") for _t, d in m.buttons()))
        assert "R-000001" in text_of(offer) and "Clutter in common areas" in text_of(offer)
        assert "302" not in text_of(offer) and "junk" not in text_of(offer) and "Ann" not in text_of(offer)
        await bob.press(offer, button(offer, "fl:join:"))
        await bob.wait_for_text("You joined R-000001")

        card = await wang.wait_for(lambda m: any(d.startswith("rq:note:") for _t, d in m.buttons()))
        await wang.press(card, button(card, "rq:note:"))
        await wang.wait_for_text("Write the note")
        await wang.send_text("Staff only: the filer is difficult")
        await wang.wait_for_text("Note added")

        for resident in (ann, bob):
            anchor = resident.messages[-1]
            await press_forged(simulator, resident, anchor, "rq:open:1")
            opened = await resident.wait_for(lambda m: "Status:" in (m.text or ""))
            await press_forged(simulator, resident, anchor, "rq:tl:1")
            timeline = await resident.wait_for(lambda m: "Timeline of R-000001" in (m.text or "")
                                               and "Status:" not in (m.text or ""))
            for shown in (text_of(opened), text_of(timeline)):
                assert "Staff only" not in shown and "difficult" not in shown and "Resident:" not in shown
            if resident is bob:
                seen = text_of(opened) + text_of(timeline)
                assert "Ann" not in seen and "302" not in seen and "junk" not in seen
            assert not any(d.startswith("rq:acc") for _t, d in opened.buttons())


async def test_staff_member_files_a_request_a_colleague_handles_it(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_two_workers)
        wang = simulator.user(7001, "Wang", language_code="en")
        qian = simulator.user(7004, "Qian", language_code="en")
        await qian.send_text("/start")
        await qian.wait_for(lambda m: m.text is not None)
        await wang.send_text("/start b_DG-JS-01-B1")
        await wang.wait_for_text("建设路12号院1号楼")
        await file_request(wang, "Broken light on the stairs", hide=False)

        card = await qian.wait_for(lambda m: any(d.startswith("rq:acc:1") for _t, d in m.buttons()))
        assert "Broken light" in text_of(card)
        await press_forged(simulator, wang, wang.messages[-1], "rq:acc:1")
        answer = await wang.wait_for_answer()
        assert "You filed R-000001 yourself" in (answer.text or "")
        await qian.press(card, button(card, "rq:acc:1"))
        await wang.wait_for_text("accepted by Qian Worker")
