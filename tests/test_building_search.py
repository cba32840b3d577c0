"""Finding a building by typing: Chinese, full pinyin, initials or its code, best first; in the core and through
both engines."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import binding
from bot.simulator import BotApiSimulator
from storage.database import Database
from storage.models import Building, Person, Role
from storage.search_keys import building_search_key
from tests.e2e import running_bot
from tests.harness import CoreChat
from tests.org_fixture import NOW, SmallOrg, make_small_org, staff


def with_named_buildings(session: Session) -> SmallOrg:
    """The small organisation and, in its first grid, buildings with the names people type."""
    org = make_small_org(session)
    session.add_all([
        Building(code="DG-JS-01-WM3", name="外贸家属院3号楼", address="工业路5号", grid_id=org.grid),
        Building(code="DG-JS-01-WM", name="外贸大厦", address="建设路30号", grid_id=org.grid),
        Building(code="DG-JS-01-OLD", name="外贸旧宿舍", address="工业路7号", grid_id=org.grid, active=False),
        Building(code="DG-JS-01-GY", name="光明小区1栋", address="外贸局对面", grid_id=org.grid),
    ])
    session.flush()
    return org


def names_found(session: Session, typed: str) -> list[str]:
    return [building.name for building in binding.find_buildings(session, typed, limit=6)]


def test_search_key_holds_chinese_pinyin_initials_and_code() -> None:
    key = building_search_key("DG-JS-01-B1", "外贸局家属院3号楼", "建设路12号")
    assert key.split("|") == ["dgjs01b1", "外贸局家属院3号楼", "waimaojujiashuyuan3haolou", "wmjjsy3hl",
                              "建设路12号", "jianshelu12hao", "jsl12h"]


async def test_typed_names_pinyin_initials_and_codes_find_the_building(database: Database) -> None:
    await database.run(with_named_buildings)

    def searches(session: Session) -> dict[str, list[str]]:
        return {typed: names_found(session, typed) for typed in (
            "外贸", "waimao", "WaiMao", "wmjsy", "wmj", "家属院", "dg-js-01-wm3", "DGJS01WM", "工业路", "w", "xyz",
            "外", " 外 贸 ",
        )}

    found = await database.run(searches)
    # Names that start with it first, shorter before longer; an address match last; never an inactive building.
    assert found["外贸"] == ["外贸大厦", "外贸家属院3号楼", "光明小区1栋"]
    assert found["waimao"] == found["WaiMao"] == found["外贸"] == found[" 外 贸 "]
    assert found["wmjsy"] == ["外贸家属院3号楼"]
    assert found["wmj"][0] == "外贸家属院3号楼"
    assert found["家属院"] == ["外贸家属院3号楼"]
    assert found["dg-js-01-wm3"] == ["外贸家属院3号楼"]
    # The code itself outranks the buildings whose codes merely start with it.
    assert found["DGJS01WM"][0] == "外贸大厦"
    assert found["工业路"] == ["外贸家属院3号楼"]
    assert found["w"] == []  # one letter narrows nothing down
    assert found["xyz"] == []
    assert "外贸大厦" in found["外"]  # one Chinese character is enough


async def test_renamed_building_is_found_by_its_new_name(database: Database) -> None:
    await database.run(with_named_buildings)

    def rename(session: Session) -> None:
        building = session.scalars(select(Building).where(Building.code == "DG-JS-01-WM")).one()
        building.name = "商务中心"

    await database.run(rename)
    assert await database.run(lambda session: names_found(session, "swzx")) == ["商务中心"]
    assert "商务中心" not in await database.run(lambda session: names_found(session, "waimao"))


async def test_resident_types_pinyin_while_choosing_a_building(database: Database, chat: CoreChat) -> None:
    await database.run(with_named_buildings)
    ann = chat.person(1003, "Ann", "en")
    await chat.text(ann, "/start")
    assert "pinyin" in ann.find("Choose your street").text

    await chat.text(ann, "qqqq")
    assert ann.last.text.startswith("No building matches “qqqq”.")
    await chat.text(ann, "wmjsy")
    offer = ann.find("Which of these")
    assert offer.buttons() == [("外贸家属院3号楼 · 工业路5号", offer.buttons()[0][1])]
    await chat.press(ann, offer.buttons()[0][1], offer)
    assert "外贸家属院3号楼" in ann.last.text

    def bound(session: Session) -> str:
        person = session.scalars(select(Person).where(Person.external_id == "1003")).one()
        assert person.building is not None
        return person.building.code

    assert await database.run(bound) == "DG-JS-01-WM3"


async def test_typing_a_building_through_the_engine(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_named_buildings)
        li = simulator.user(1001, "李", language_code="zh-hans")
        await li.send_text("/start")
        await li.wait_for_text("拼音")
        await li.send_text("waimao")
        offer = await li.wait_for_text("以下哪个是您的楼栋")
        labels = [label for label, _data in offer.buttons()]
        assert labels == ["外贸大厦 · 建设路30号", "外贸家属院3号楼 · 工业路5号", "光明小区1栋 · 外贸局对面"]
        await li.press(offer, offer.buttons()[1][1])
        await li.wait_for_text("外贸家属院3号楼（工业路5号）")


# --- /invite: finding the unit by one of its buildings -------------------------------------------------------


def with_named_buildings_and_admin(session: Session) -> SmallOrg:
    """The named buildings, one more "外贸" building in another street's grid, and an admin of 建设社区."""
    org = with_named_buildings(session)
    session.add(Building(code="XH-RM-01-WM", name="外贸新村", address="人民路1号", grid_id=org.grid2))
    staff(session, 7002, "陈社区", Role.COMMUNITY, org.community, "en")
    return org


async def test_an_admin_finds_the_grid_of_an_invite_by_typing_a_building(database: Database, chat: CoreChat) -> None:
    org = await database.run(with_named_buildings_and_admin)
    chen = chat.person(7002, "陈社区", "en")
    await chat.text(chen, "/invite")
    await chat.press(chen, chen.last.button("Grid worker"))
    assert "type part of the name" in chen.last.text

    await chat.text(chen, "qqqq")
    assert chen.last.text.startswith("No building of your area matches “qqqq”.")
    await chat.text(chen, "waimao")  # 外贸新村 lies in another street: its grid is not offered
    offer = chen.find("Grid worker for which unit?")
    assert [label for label, _data in offer.buttons()] == ["建设一网格 · 外贸大厦 · 建设路30号"]
    await chat.text(chen, "dg-js-02-b1")  # a building's code finds its grid too
    offer = chen.last
    assert offer.buttons() == [("建设二网格 · 建设路20号院3号楼 · 建设路20号", f"iv:m:worker:{org.empty_grid}")]
    await chat.press(chen, offer.buttons()[0][1], offer)
    assert "Invitation for a new grid worker of 建设二网格" in chen.find("Invitation").text
    await chat.text(chen, "waimao")  # the invite is made: typing is no longer a search
    assert "for which unit" not in chen.last.text

    # The core refuses a forged button for the other street's grid whatever the search showed.
    await chat.press(chen, f"iv:m:worker:{org.grid2}")
    assert "within your own area" in chen.answers[-1].text


async def test_a_resident_typing_in_the_invite_step_is_refused(database: Database, chat: CoreChat) -> None:
    await database.run(with_named_buildings_and_admin)

    def forge_state(session: Session) -> None:
        session.add(Person(channel="telegram", external_id="1009", chat_id="1009", display_name="Eve", locale="en",
                           state="invite.unit", state_data={"role": "worker"}, created_at=NOW))

    await database.run(forge_state)
    eve = chat.person(1009, "Eve", "en")
    await chat.text(eve, "waimao")
    assert "Only community, street and district staff can invite staff." in eve.last.text
    assert not any(data.startswith("iv:") for _label, data in eve.last.buttons())


async def test_inviting_by_typing_a_building_through_the_engine(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    async with running_bot(simulator, url, database_url, engine=engine) as bot:
        await bot.service.database.run(with_named_buildings_and_admin)
        chen = simulator.user(7002, "Chen", language_code="en")
        await chen.send_text("/invite")
        roles = await chen.wait_for_text("Invite staff as")
        await chen.press(roles, next(d for _t, d in roles.buttons() if d and d.startswith("iv:u:worker:")))
        await chen.wait_for_text("pinyin")
        await chen.send_text("wmds")  # the initials of 外贸大厦 (wài mào dà shà)
        offer = await chen.wait_for(lambda m: any("外贸大厦" in label for label, _data in m.buttons()))
        assert [label for label, _data in offer.buttons()] == ["建设一网格 · 外贸大厦 · 建设路30号"]
        await chen.press(offer, offer.buttons()[0][1])
        invitation = await chen.wait_for_text("/start inv_")
        assert "建设一网格" in (invitation.text or "")


async def test_a_lost_invite_step_asks_to_start_again(database: Database, chat: CoreChat) -> None:
    await database.run(with_named_buildings_and_admin)

    def lose_the_role(session: Session) -> None:
        admin = session.scalars(select(Person).where(Person.external_id == "7002")).one()
        admin.state, admin.state_data = "invite.unit", {"role": "nonsense"}

    await database.run(lose_the_role)
    chen = chat.person(7002, "陈社区", "en")
    await chat.text(chen, "waimao")
    assert chen.last.text == "Sorry, I lost track. Please start again with /invite."
