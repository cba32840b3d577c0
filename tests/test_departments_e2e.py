"""分流 through a real engine against the Bot API simulator: the street hands a request to a department from its
card, the department accepts it and resolves it with a photo, the street confirms the result and the resident
gives the verdict and the stars; a department that gives a request back returns it to the street with the
reason."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.workdays import calendar_of
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import EventKind, Level, Rating, Request, RequestEvent, RequestStatus
from tests.department_fixture import LI, QIAN, SUN, DepartmentsOrg, make_departments_org
from tests.e2e import QUIET_MORNING, RunningBot, running_bot

JPEG = b"\xff\xd8\xff\xe0" + b"the lane is clear" * 20 + b"\xff\xd9"


def has_button(prefix: str) -> object:
    return lambda m: any(data and data.startswith(prefix) for _text, data in m.buttons())


def button(message: SimMessage, prefix: str) -> str:
    for _text, data in message.buttons():
        if data and data.startswith(prefix):
            return data
    raise AssertionError(f"no {prefix!r} button on {message.text or message.caption!r}: {message.buttons()}")


async def started(simulator: BotApiSimulator, user_id: int, name: str) -> SimUser:
    user = simulator.user(user_id, name, language_code="en")
    await user.send_text("/start")
    await user.wait_for(lambda m: m.text is not None)
    return user


async def the_request(bot: RunningBot) -> Request:
    return await bot.service.database.run(lambda s: s.scalars(select(Request)).one())


async def dispatch_from_the_card(simulator: BotApiSimulator, sun: SimUser, qian: SimUser,
                                 setup: DepartmentsOrg, working_days: int | None = None) -> SimMessage:
    """The street opens the request from /tasks and hands it to its urban management squad, with the category's
    deadline or ``working_days``; the squad's card."""
    await sun.send_text("/tasks")
    listing = await sun.wait_for(has_button("rq:open:"))
    await sun.press(listing, button(listing, "rq:open:"))
    card = await sun.wait_for(has_button("rq:dsp:"))
    await sun.press(card, button(card, "rq:dsp:"))
    choices = await sun.wait_for(has_button("rq:dto:"))
    assert [text for text, _data in choices.buttons()] == ["东关城管中队", "区供电公司"]
    await sun.press(choices, button(choices, f"rq:dto:{setup.request}:{setup.squad}"))
    prompt = await sun.wait_for_text("What should 东关城管中队 do with R-000001?")
    if working_days is not None:
        await sun.press(prompt, button(prompt, f"rq:ddl:{setup.request}:{working_days}"))
        await sun.wait_for(lambda m: m.message_id == prompt.message_id and f"({working_days} working days)"
                           in (m.text or ""))
    mark = simulator.seq
    await sun.send_text("Clear the stalls in the lane")
    await sun.wait_for_text("now with 东关城管中队", since=mark)
    return await qian.wait_for(lambda m: "handed to your department" in (m.text or ""), since=mark)


async def test_the_street_dispatches_the_department_resolves_the_street_confirms_the_resident_rates(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        setup = await bot.service.database.run(partial(make_departments_org, filed_at=QUIET_MORNING))
        sun = await started(simulator, SUN, "Sun")
        qian = await started(simulator, QIAN, "Qian")
        li = await started(simulator, LI, "Li")
        qian_card = await dispatch_from_the_card(simulator, sun, qian, setup)
        assert "Clear the stalls in the lane" in (qian_card.text or "")
        assert not any(data.startswith(("rq:esc:", "rq:res:", "rq:dsp:")) for _t, data in qian_card.buttons())

        # The squad accepts and reports it done with a photo and a caption.
        await qian.press(qian_card, button(qian_card, "rq:acc:"))
        accepted = await qian.wait_for(has_button("rq:dd:"))
        await qian.press(accepted, button(accepted, "rq:dd:"))
        await qian.wait_for_text("What did your department do for R-000001?")
        mark = simulator.seq
        await qian.send_photo(JPEG, caption="Stalls moved to the market hall")
        await qian.wait_for_text("now with 东关街道", since=mark)
        back = await sun.wait_for(lambda m: "done by the department" in (m.text or ""), since=mark)
        assert "Stalls moved to the market hall" in (back.text or "")
        photo = await sun.wait_for(lambda m: m.photo is not None, since=mark)
        assert "R-000001" in (photo.caption or "")
        request = await the_request(bot)
        assert (request.level, request.unit_id) == (Level.STREET, setup.org.street)

        # The street confirms the result to the resident, who says it is fixed and gives five stars.
        await sun.press(back, button(back, "rq:res:"))
        await sun.wait_for_text("What was done for R-000001?")
        mark = simulator.seq
        await sun.send_text("The squad moved the stalls to the market hall")
        verdict = await li.wait_for(lambda m: "moved the stalls" in (m.text or m.caption or ""), since=mark)
        assert verdict.photo is not None  # the squad's photo of the cleared lane
        await li.press(verdict, button(verdict, f"my:ok:{setup.request}:fixed"))
        stars = await li.wait_for(has_button(f"my:star:{setup.request}:5"), since=mark)
        await li.press(stars, button(stars, f"my:star:{setup.request}:5"))
        await li.wait_for(lambda m: "comment" in (m.text or m.caption or "").lower(), since=mark)
        request = await the_request(bot)
        rating = await bot.service.database.run(lambda s: s.get_one(Rating, setup.request))
        assert (request.status, rating.outcome, rating.stars) == (RequestStatus.CLOSED, "fixed", 5)


async def test_a_department_that_gives_it_back_returns_it_to_the_street_with_the_reason(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        setup = await bot.service.database.run(partial(make_departments_org, filed_at=QUIET_MORNING))
        sun = await started(simulator, SUN, "Sun")
        qian = await started(simulator, QIAN, "Qian")
        qian_card = await dispatch_from_the_card(simulator, sun, qian, setup, working_days=10)
        request = await the_request(bot)

        def ten_working_days_after_the_dispatch(session: Session) -> datetime:
            dispatch = session.scalars(select(RequestEvent).where(RequestEvent.kind == EventKind.DISPATCHED)).one()
            assert dispatch.due_at == request.department_due_at
            return calendar_of(session).due(dispatch.at, 10)

        assert request.department_due_at == await bot.service.database.run(ten_working_days_after_the_dispatch)
        # The street follows the work it handed over in /tasks.
        await sun.send_text("/tasks")
        listing = await sun.wait_for_text("With departments:")
        assert "R-000001 · Clutter in common areas · with 东关城管中队 · due back" in (listing.text or "")
        await qian.press(qian_card, button(qian_card, "rq:hb:"))
        await qian.wait_for_text("Why does your department give R-000001 back?")
        mark = simulator.seq
        await qian.send_text("Illegal construction: a housing matter")
        back = await sun.wait_for(lambda m: "gave R-000001 back" in (m.text or ""), since=mark)
        assert "Illegal construction: a housing matter" in (back.text or "")
        assert any(data.startswith("rq:dsp:") for _t, data in back.buttons())  # it may go to another department
        request = await the_request(bot)
        assert (request.level, request.unit_id, request.status) == (Level.STREET, setup.org.street,
                                                                     RequestStatus.NEW)
        # The squad's own card now says so and offers nothing.
        stale = await qian.wait_for(lambda m: m.message_id == qian_card.message_id and "no longer with your unit"
                                    in (m.text or ""), since=mark)
        assert stale.buttons() == []
