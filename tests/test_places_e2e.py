"""Filing about somewhere else through a real engine against the Bot API simulator: an outdoor worker with no
building reports a market by its QR code, a resident reports a location in another grid (by its boundary, and
by the nearest building), a place found by name; and a WeChat location in GCJ-02 is routed to its building."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.binding import distance_m
from bot.core.clock import FrozenClock
from bot.core.geo import wgs84_to_gcj02
from bot.simulator import BotApiSimulator, SimMessage, SimUser
from storage.models import Building, Grid, Person, Request, Role
from tests.e2e import RunningBot, running_bot
from tests.org_fixture import NOW, make_small_org, staff
from tests.place_fixture import IN_THE_BOUNDARY, NEAR_RENMIN, PlacesOrg, add_places
from tests.test_wechat import LI, number_for, reply, settle, wechat_bot

WANG, ZHAO, RIDER, LI_TG = 7001, 7003, 3001, 1001


def has_button(prefix: str) -> object:
    return lambda m: any(data and data.startswith(prefix) for _text, data in m.buttons())


def button(message: SimMessage, prefix: str) -> str:
    for _text, data in message.buttons():
        if data and data.startswith(prefix):
            return data
    raise AssertionError(f"no {prefix!r} button on {message.text!r}: {message.buttons()}")


def org_with_places(boundary: bool) -> object:
    def build(session: Session) -> PlacesOrg:
        setup = add_places(session, make_small_org(session), boundary=boundary)
        staff(session, WANG, "Wang Worker", Role.WORKER, setup.org.grid, "en")
        staff(session, ZHAO, "Zhao Worker", Role.WORKER, setup.org.grid2, "en")
        session.add(Person(channel="telegram", external_id=str(LI_TG), chat_id=str(LI_TG), display_name="Li",
                           locale="en", building_id=setup.org.building, state_data={}, created_at=NOW))
        return setup

    return build


async def started(simulator: BotApiSimulator, user_id: int, name: str) -> SimUser:
    user = simulator.user(user_id, name, language_code="en")
    await user.send_text("/start")
    await user.wait_for(lambda m: m.text is not None)
    return user


async def file_from_categories(user: SimUser, categories: SimMessage, description: str) -> SimMessage:
    """From the category question to the receipt: first category, a description, no photo, (no location
    when asked), name shown, confirmed."""
    await user.press(categories, button(categories, "fl:cat:1"))
    await user.wait_for_text("Describe the problem")
    await user.send_text(description)
    photos = await user.wait_for(has_button("fl:photos"))
    await user.press(photos, button(photos, "fl:photos"))
    asked = await user.wait_for(lambda m: any(d.startswith(("fl:loc:", "fl:hide:")) for _t, d in m.buttons()))
    if any(d.startswith("fl:loc:") for _t, d in asked.buttons()):
        await user.press(asked, button(asked, "fl:loc:-"))
        asked = await user.wait_for(has_button("fl:hide:0"))
    await user.press(asked, button(asked, "fl:hide:0"))
    summary = await user.wait_for(has_button("fl:ok:"))
    await user.press(summary, button(summary, "fl:ok:"))
    return await user.wait_for_text("Filed as R-")


async def only_request(bot: RunningBot) -> Request:
    return await bot.service.database.run(lambda s: s.scalars(select(Request)).one())


async def test_an_outdoor_worker_reports_a_market_by_its_qr_code_and_its_grid_worker_gets_it(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        setup = await bot.service.database.run(org_with_places(boundary=False))
        wang = await started(simulator, WANG, "Wang")
        rider = simulator.user(RIDER, "Rider", language_code="en")
        await rider.send_text("/start p_DG-JS-01-MKT")
        categories = await rider.wait_for(has_button("fl:cat:"))
        assert "建设路农贸市场" in (categories.text or "")
        mark = simulator.seq
        receipt = await file_from_categories(rider, categories, "Stalls block the road at the east gate")
        assert "Wang Worker" in (receipt.text or "")
        card = await wang.wait_for(lambda m: "R-000001" in (m.text or ""), since=mark)
        assert "Place: 建设路农贸市场, 建设路30号" in (card.text or "")
        assert any(data.startswith("rq:acc:") for _t, data in card.buttons())

        request = await only_request(bot)
        assert (request.place_id, request.building_id, request.grid_id) == (setup.market, None, setup.org.grid)
        assert (request.latitude, request.longitude) == (32.9995, 112.5290)  # the market's, none was sent
        person = await bot.service.database.run(
            lambda s: s.scalars(select(Person).where(Person.external_id == str(RIDER))).one())
        assert person.building_id is None  # reporting bound the rider to nothing

        # A second rider at the same market is offered "me too" instead of filing it again.
        other = simulator.user(RIDER + 1, "Other rider", language_code="en")
        await other.send_text("/start p_DG-JS-01-MKT")
        categories = await other.wait_for(has_button("fl:cat:"))
        await other.press(categories, button(categories, "fl:cat:1"))
        offer = await other.wait_for_text("Others already reported this here in the last week")
        assert "0 people joined" in (offer.text or "")  # at a market nobody is a neighbour
        mark = simulator.seq
        await other.press(offer, button(offer, f"fl:join:{request.id}"))
        await other.wait_for_text("You joined R-000001. 1 person supports it now", since=mark)
        await wang.wait_for_text("One more person reported R-000001 (2 in all)", since=mark)
        assert (await only_request(bot)).supporters == 1


@pytest.mark.parametrize(("boundary", "point", "where"), [
    (True, IN_THE_BOUNDARY, "a location in 人民一网格"),
    (False, NEAR_RENMIN, "人民路8号院2号楼"),
], ids=["boundary", "nearest"])
async def test_a_resident_reports_a_location_in_another_grid_and_that_grid_gets_it(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str, boundary: bool,
    point: tuple[float, float], where: str,
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        setup = await bot.service.database.run(org_with_places(boundary=boundary))
        wang = await started(simulator, WANG, "Wang")
        zhao = await started(simulator, ZHAO, "Zhao")
        li = simulator.user(LI_TG, "Li", language_code="en")
        await li.send_text("/new")
        own = await li.wait_for(has_button("fl:else"))
        assert "建设路12号院1号楼" in (own.text or "")
        await li.press(own, button(own, "fl:else"))
        await li.wait_for_text("Where is the problem?")
        await li.send_location(*point)
        categories = await li.wait_for(lambda m: has_button("fl:cat:")(m) and where in (m.text or ""))
        mark = simulator.seq
        receipt = await file_from_categories(li, categories, "A shed is being built in the lane")
        assert "Zhao Worker" in (receipt.text or "")
        card = await zhao.wait_for(lambda m: "R-000001" in (m.text or ""), since=mark)
        assert any(data.startswith("rq:acc:") for _t, data in card.buttons())
        assert not [m for m in wang.messages if "R-000001" in (m.text or "")]

        request = await only_request(bot)
        assert request.grid_id == setup.org.grid2 and (request.latitude, request.longitude) == point
        assert request.building_id == (None if boundary else setup.org.building2)


async def test_someone_without_a_building_finds_a_place_by_name_from_the_greeting(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        setup = await bot.service.database.run(org_with_places(boundary=False))
        await started(simulator, WANG, "Wang")
        rider = simulator.user(RIDER, "Rider", language_code="en")
        await rider.send_text("/start")
        greeting = await rider.wait_for(has_button("fl:any"))
        await rider.press(greeting, button(greeting, "fl:any"))
        await rider.wait_for_text("Where is the problem?")
        await rider.send_photo(b"\xff\xd8\xff\xe0 not words \xff\xd9")
        await rider.wait_for_text("Please send the location")
        await rider.send_text("超市")
        await rider.wait_for_text("No place is called “超市”")
        await rider.send_text("农贸")
        found = await rider.wait_for(has_button("fl:place:"))
        assert [text for text, _data in found.buttons()] == ["建设路农贸市场"]
        await rider.press(found, f"fl:place:{setup.market}")
        categories = await rider.wait_for(lambda m: has_button("fl:cat:")(m) and "农贸市场" in (m.text or ""))
        # Somewhere else after all: the place is asked again.
        await rider.press(categories, button(categories, "fl:else"))
        await rider.wait_for_text("Where is the problem?")
        await rider.send_text("农贸")
        again = await rider.wait_for(lambda m: has_button("fl:place:")(m) and m.message_id != found.message_id)
        await rider.press(again, f"fl:place:{setup.market}")
        categories = await rider.wait_for(
            lambda m: has_button("fl:cat:")(m) and m.message_id != categories.message_id)
        await file_from_categories(rider, categories, "Rubbish piles up behind the market")
        request = await only_request(bot)
        assert request.place_id == setup.market and request.unit_id == setup.org.grid


# --- WeChat: GCJ-02 ---------------------------------------------------------------------------------------------


RENMIN_B1 = (32.9901, 112.5402)  # 人民路8号院2号楼, in WGS-84


def with_decoy(session: Session) -> None:
    """A building of the empty grid where 人民路8号院2号楼 would be if WeChat's GCJ-02 were taken as WGS-84."""
    empty = session.scalars(select(Grid).where(Grid.code == "DG-JS-02")).one()
    latitude, longitude = wgs84_to_gcj02(*RENMIN_B1)
    session.add(Building(code="DECOY", name="诱饵楼", address="", latitude=latitude, longitude=longitude,
                         grid_id=empty.id))


async def test_a_wechat_location_in_gcj02_is_routed_to_the_right_building(database_url: str) -> None:
    clock = FrozenClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    async with wechat_bot(database_url, clock) as bot:
        await bot.service.database.run(with_decoy)
        await reply(bot, LI, "/new")
        posted = await bot.sim.location(LI, *wgs84_to_gcj02(*RENMIN_B1))
        assert (posted.status, posted.body) == (200, "success")
        await settle(bot)
        assert "人民路8号院2号楼" in bot.sim.messages(LI)[-1].content
        await reply(bot, LI, await number_for(bot, LI, "fl:cat:1"))
        await reply(bot, LI, "路边违章搭建了一个棚子")
        await reply(bot, LI, await number_for(bot, LI, "fl:photos"))
        await reply(bot, LI, await number_for(bot, LI, "fl:hide:0"))
        await reply(bot, LI, await number_for(bot, LI, "fl:ok:"))
        request = await bot.service.database.run(lambda s: s.scalars(select(Request)).one())
        assert request.building is not None and request.building.code == "XH-RM-01-B1"
        assert request.latitude is not None and request.longitude is not None
        assert distance_m(request.latitude, request.longitude, *RENMIN_B1) < 1
